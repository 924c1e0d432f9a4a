import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttachStream, agentKeys, attachRequest, secretOf } from '../helpers/attach.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import {
  adminClients,
  call,
  failure,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

// Limits answer RESOURCE_EXHAUSTED with what was exceeded: admin writes per token, and Attach
// streams per collection (a refused attach consumes nothing and can be tried again).

let srv: TestServer;
let cp: ControlPlane;
let admin: ReturnType<typeof adminClients>;

beforeAll(async () => {
  srv = await startTestServer({
    limits: { adminWritesPerSecond: 0.5, adminWriteBurst: 6, streamsPerCollection: 2 },
  });
  cp = controlPlane(srv.address, srv.rootToken);
  admin = adminClients(srv.address);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: 'sk-limits-test-000000001' });
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

describe('limits', () => {
  it('refuses a token past its write rate, only its writes, nothing stored', async () => {
    // 2 of the root token's 6 writes went on the setup; 4 more pass.
    for (let i = 0; i < 4; i++) await cp.setEnv('acme', `V${i}`, 'x', false);
    const over = await failure(cp.setEnv('acme', 'V9', 'x', false));
    expect(over.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(over.details).toMatch(
      /^token tok_[0-9a-f]+ is over its write rate \(0\.5 a second\); retry in \d+ ms$/,
    );
    // Reads go on.
    const got = await call(
      admin.env.getEnvVar.bind(admin.env),
      { collection: 'acme', name: 'V0' },
      srv.rootToken,
    );
    expect(got.envVar?.name).toBe('V0');
    // The write was refused whole: nothing stored.
    expect(
      (
        await failure(
          call(
            admin.env.getEnvVar.bind(admin.env),
            { collection: 'acme', name: 'V9' },
            srv.rootToken,
          ),
        )
      ).code,
    ).toBe(status.NOT_FOUND);
  });

  it('caps the streams of a collection; a refused attach can be tried again', async () => {
    const runs = await Promise.all([1, 2, 3].map(() => cp.createRun('acme', 'openai')));
    const attach = (i: number) =>
      new AttachStream(
        cp.agent,
        attachRequest({
          runId: runs[i]!.run!.id,
          credential: secretOf(runs[i]!.bootstrapSecret),
          keys: agentKeys(),
        }),
      );
    const first = attach(0);
    const second = attach(1);
    await first.next();
    await second.next();
    const third = attach(2);
    const refused = await third.closed();
    expect(refused).toEqual({
      code: status.RESOURCE_EXHAUSTED,
      details: 'collection "acme" has 2 streams open on this control plane (at most 2)',
    });
    first.cancel();
    await first.closed().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const again = attach(2);
    await again.next();
    second.cancel();
    again.cancel();
  });
});
