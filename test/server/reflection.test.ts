import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { ReflectionClient } from '../helpers/reflection.js';
import { bearer } from '../helpers/rpc.js';
import { failure, startTestServer, type TestServer } from '../helpers/server.js';

/** Every service the .proto files of runkeys.v1 declare, as fully qualified names. */
function declaredServices(): string[] {
  const dir = join(REPO_ROOT, 'proto', 'runkeys', 'v1');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/^service (\w+)/gm)])
    .map((m) => `runkeys.v1.${m[1]}`)
    .sort();
}

let srv: TestServer;
let reflection: ReflectionClient;

beforeAll(async () => {
  srv = await startTestServer();
  reflection = new ReflectionClient(srv.address);
});

afterAll(async () => {
  reflection.close();
  await srv.close();
});

describe('server reflection', () => {
  it('lists every service the runkeys.v1 protos declare', async () => {
    const listed = await reflection.listServices();
    const runkeys = listed.filter((s) => s.startsWith('runkeys.v1.')).sort();
    expect(runkeys).toEqual(declaredServices());
  });

  it('lists the health service, so grpcurl can check health without .proto files', async () => {
    const listed = await reflection.listServices();
    expect(listed).toContain('grpc.health.v1.Health');
    const root = await reflection.rootFor('grpc.health.v1.Health');
    const methods = Object.keys(root.lookupService('grpc.health.v1.Health').methods);
    expect(methods).toEqual(expect.arrayContaining(['Check', 'Watch']));
  });

  it('describes each listed service with the methods of its proto', async () => {
    for (const name of await reflection.listServices()) {
      const root = await reflection.rootFor(name);
      const methods = Object.keys(root.lookupService(name).methods);
      expect(methods.length, name).toBeGreaterThan(0);
    }
    const root = await reflection.rootFor('runkeys.v1.EnvVarService');
    expect(Object.keys(root.lookupService('runkeys.v1.EnvVarService').methods).sort()).toEqual([
      'CreateEnvVar',
      'DeleteEnvVar',
      'GetEnvVar',
      'ListEnvVars',
      'UpdateEnvVar',
    ]);
  });

  it('creates and lists collections with messages built from reflected types only', async () => {
    const md = () => bearer(srv.rootToken);
    const service = 'runkeys.v1.CollectionService';
    const created = await reflection.call(
      service,
      'CreateCollection',
      { name: 'reflected', description: 'made through reflection' },
      md(),
    );
    expect((created.collection as { name: string }).name).toBe('reflected');

    const listed = await reflection.call(service, 'ListCollections', { pageSize: 10 }, md());
    const rows = listed.collections as { name: string; description: string }[];
    expect(rows.map((c) => [c.name, c.description])).toEqual([
      ['reflected', 'made through reflection'],
    ]);
    expect(listed.nextPageToken).toBe('');
  });

  it('reports a failed call through reflection with its status and message', async () => {
    const f = await failure(
      reflection.call(
        'runkeys.v1.CollectionService',
        'GetCollection',
        { name: 'absent' },
        bearer(srv.rootToken),
      ),
    );
    expect(f).toEqual({ code: status.NOT_FOUND, details: 'collection "absent" not found' });
  });
});

describe('grpc.health.v1.Health', () => {
  const Health = makeGenericClientConstructor(healthService, 'Health');

  function check(service: string): Promise<{ status: string | number }> {
    const client = new Health(srv.address, credentials.createInsecure());
    return new Promise((resolve, reject) => {
      client.check({ service }, (err: Error | null, res: { status: string | number }) => {
        client.close();
        if (err === null) resolve(res);
        else reject(err);
      });
    });
  }

  it('reports the server and every declared runkeys service as SERVING', async () => {
    for (const name of ['', ...declaredServices()]) {
      const res = await check(name);
      expect([res.status, name]).toEqual(['SERVING', name]);
    }
  });
});
