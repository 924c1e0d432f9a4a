import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AdminClients,
  adminClients,
  call,
  closeClients,
  failure,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

let srv: TestServer;
let api: AdminClients;

beforeAll(async () => {
  srv = await startTestServer();
  api = adminClients(srv.address);
  await call(
    api.collections.createCollection.bind(api.collections),
    { name: 'acme', description: '', maxOfflineSeconds: 0 },
    srv.rootToken,
  );
});

afterAll(async () => {
  closeClients(api);
  await srv.close();
});

describe('EnvVarService', () => {
  it('stores a sensitive variable write-only and a plain one readable', async () => {
    const env = api.env;
    const base = { collection: 'acme', allowOverride: false, allowMissing: true };
    await call(
      env.updateEnvVar.bind(env),
      { ...base, name: 'SECRET_A', value: 's3cr3t-value-aaaa' },
      srv.rootToken,
    );
    await call(
      env.updateEnvVar.bind(env),
      { ...base, name: 'PLAIN_B', value: 'https://svc.example', sensitive: false },
      srv.rootToken,
    );
    const list = await call(
      env.listEnvVars.bind(env),
      { collection: 'acme', pageSize: 0, pageToken: '' },
      srv.rootToken,
    );
    expect(list.envVars.map((v) => [v.name, v.sensitive, v.value])).toEqual([
      ['PLAIN_B', false, 'https://svc.example'],
      ['SECRET_A', true, ''],
    ]);
  });

  it('refuses a name that changes how programs load unless allow_override is set', async () => {
    const env = api.env;
    const req = { collection: 'acme', name: 'LD_PRELOAD', value: '/x.so', allowOverride: false };
    const f = await failure(call(env.createEnvVar.bind(env), req, srv.rootToken));
    expect(f.code).toBe(status.INVALID_ARGUMENT);
    expect(f.details).toBe(
      '"name" must not name a variable that changes how the sandbox loads code or finds ' +
        'programs unless "allow_override" is set (--allow-override); got LD_PRELOAD',
    );
    await call(env.createEnvVar.bind(env), { ...req, allowOverride: true }, srv.rootToken);
  });

  it('pages through a list with page tokens', async () => {
    const env = api.env;
    for (let i = 0; i < 5; i++) {
      await call(
        env.createEnvVar.bind(env),
        {
          collection: 'acme',
          name: `PAGE_${i}`,
          value: `value-${i}-xxxxxxxx`,
          allowOverride: false,
        },
        srv.rootToken,
      );
    }
    const names: string[] = [];
    let pageToken = '';
    do {
      const res = await call(
        env.listEnvVars.bind(env),
        { collection: 'acme', pageSize: 2, pageToken },
        srv.rootToken,
      );
      expect(res.envVars.length).toBeLessThanOrEqual(2);
      names.push(...res.envVars.map((v) => v.name));
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    expect(names.filter((n) => n.startsWith('PAGE_'))).toEqual([
      'PAGE_0',
      'PAGE_1',
      'PAGE_2',
      'PAGE_3',
      'PAGE_4',
    ]);
  });
});
