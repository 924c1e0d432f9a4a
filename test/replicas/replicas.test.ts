import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunState } from '../../proto/gen/runkeys/v1/runs.js';
import {
  APP_REDIRECT_URI,
  CLIENT_ID,
  CLIENT_SECRET,
  codeFlowTokens,
  LightAgent,
} from '../helpers/accounts.js';
import {
  type AgentProcess,
  makeSandbox,
  parseDotenv,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { AttachStream, agentKeys, attachRequest, secretOf } from '../helpers/attach.js';
import { type OidcServer, startOidcServer } from '../helpers/oidc.js';
import { freshDatabase, postgresUrl } from '../helpers/postgres.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { adminClients, call, closeClients } from '../helpers/server.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// Two control-plane replicas on one PostgreSQL database, as behind a load balancer: a bootstrap
// secret is single use across them, a refresh is single flight across them, a change made
// through one reaches agents on the other within a second, and agents of a replica that dies
// resume on the other without losing anything.

const masterKey = randomBytes(32).toString('base64');
let db: Awaited<ReturnType<typeof freshDatabase>>;
let a: ServerProcess;
let b: ServerProcess;
let cpA: ControlPlane;
let cpB: ControlPlane;

async function replica(rootToken?: string): Promise<ServerProcess> {
  return spawnServer({
    rootToken,
    env: { RUNKEYS_MASTER_KEY: masterKey, RUNKEYS_DATABASE_URL: db.url },
  });
}

describe.skipIf(postgresUrl() === undefined)('two replicas on one PostgreSQL', () => {
  beforeAll(async () => {
    db = await freshDatabase();
    a = await replica();
    b = await replica(a.rootToken);
    cpA = controlPlane(a.address, a.rootToken);
    cpB = controlPlane(b.address, a.rootToken);
    await cpA.createCollection('acme');
    await cpB.setProvider('acme', 'openai', { apiKey: 'sk-replicas-test-0000001' });
    await cpA.setEnv('acme', 'FEATURE', 'v1', false);
  }, 60_000);

  afterAll(async () => {
    stopAgents();
    cpA?.close();
    cpB?.close();
    await Promise.all([a?.kill(), b?.kill()]);
    await db?.drop();
  });

  it('one bootstrap secret, attached through both at once: exactly one wins', async () => {
    const res = await cpA.createRun('acme', 'openai');
    const streams = Array.from({ length: 8 }, (_, i) => {
      const cp = i % 2 === 0 ? cpA : cpB;
      return new AttachStream(
        cp.agent,
        attachRequest({
          runId: res.run!.id,
          credential: secretOf(res.bootstrapSecret),
          keys: agentKeys(),
        }),
      );
    });
    const outcomes = await Promise.all(
      streams.map((s) =>
        s.next(5_000).then(
          () => 'bundle',
          () => s.closed(),
        ),
      ),
    );
    for (const s of streams) s.cancel();
    expect(outcomes.filter((o) => o === 'bundle')).toHaveLength(1);
    for (const o of outcomes) {
      if (o !== 'bundle') expect(o).toMatchObject({ code: status.UNAUTHENTICATED });
    }
  });

  it('a change made through B reaches an agent attached to A within a second', async () => {
    const agent = new LightAgent(cpA.agent, await cpA.createRun('acme', 'openai'));
    try {
      await waitFor(() => agent.value('FEATURE'), 5_000, 'the first bundle');
      for (const value of ['v2', 'v3', 'v4']) {
        const t0 = performance.now();
        await cpB.setEnv('acme', 'FEATURE', value, false);
        await waitFor(() => agent.value('FEATURE') === value, 1_000, `${value} on A`);
        expect(performance.now() - t0).toBeLessThan(1_000);
      }
    } finally {
      agent.stop();
    }
  });

  describe('with an OAuth account', () => {
    let oidc: OidcServer;
    beforeAll(async () => {
      oidc = await startOidcServer({
        accessTokenTtlSeconds: 300,
        scopes: ['api'],
        clients: [
          {
            client_id: CLIENT_ID,
            client_secret: CLIENT_SECRET,
            redirect_uris: [APP_REDIRECT_URI],
          },
        ],
      });
      const admin = adminClients(a.address);
      try {
        await call(
          admin.oauthClients.createOAuthClient.bind(admin.oauthClients),
          {
            collection: 'acme',
            name: 'gh',
            client: {
              issuer: oidc.issuer,
              authorizationEndpoint: '',
              tokenEndpoint: '',
              deviceAuthorizationEndpoint: '',
              revocationEndpoint: '',
              clientId: CLIENT_ID,
              clientSecret: CLIENT_SECRET,
              tokenEndpointAuthMethod: '',
              scopes: ['openid', 'api'],
              injection: { env: [{ name: 'GH_TOKEN', field: '' }], files: [] },
              provider: '',
            },
          },
          a.rootToken,
        );
        const tokens = await codeFlowTokens(oidc, APP_REDIRECT_URI);
        await call(
          admin.accounts.createConnectedAccount.bind(admin.accounts),
          {
            collection: 'acme',
            name: 'octo',
            client: 'gh',
            tokens: {
              accessToken: tokens.access_token,
              refreshToken: tokens.refresh_token,
              expiresIn: tokens.expires_in,
              scope: '',
              extra: {},
            },
          },
          a.rootToken,
        );
      } finally {
        closeClients(admin);
      }
    }, 30_000);
    afterAll(() => oidc?.close());

    it('a refresh asked of both replicas at once makes one token request', async () => {
      const admins = [adminClients(a.address), adminClients(b.address)];
      try {
        for (let round = 0; round < 3; round++) {
          oidc.resetCounts();
          await Promise.all(
            admins.map((c) =>
              call(
                c.accounts.refreshConnectedAccount.bind(c.accounts),
                { collection: 'acme', name: 'octo' },
                a.rootToken,
              ),
            ),
          );
          expect(oidc.tokenRequests('refresh_token')).toBe(1);
        }
      } finally {
        for (const c of admins) closeClients(c);
      }
    });
  });

  describe('a replica killed while agents are attached', () => {
    let sandbox: Sandbox;
    let agent: AgentProcess;

    it('its agents resume on the other; no .env removed, no value lost', async () => {
      // A third replica to kill, so the others stay for the tests above.
      const c = await replica(a.rootToken);
      sandbox = makeSandbox();
      const run = await cpA.createRun('acme', 'openai');
      // The agent is given both addresses, as DNS round robin or a load balancer would; it
      // attaches to the first that answers: the one about to die.
      const vars = sandboxVariables(run, `ipv4:${c.address},${b.address}`);
      agent = spawnAgent({ cwd: sandbox.dir, env: vars });
      const dotenvNow = () => {
        const text = readIfExists(sandbox.envFile);
        return text === undefined ? undefined : parseDotenv(text).dotenv;
      };
      const first = await waitFor(() => dotenvNow()?.FEATURE, 10_000, 'the first .env');
      expect((await cpA.getRun('acme', run.run!.id)).state).toBe(RunState.RUN_STATE_ATTACHED);

      await c.kill('SIGKILL');
      // While no replica serves the agent, it keeps what it holds.
      expect(dotenvNow()?.FEATURE).toBe(first);
      expect(dotenvNow()?.OPENAI_API_KEY).toBe('sk-replicas-test-0000001');

      await cpB.setEnv('acme', 'FEATURE', 'after-failover', false);
      await waitFor(
        () => dotenvNow()?.FEATURE === 'after-failover',
        15_000,
        'the update through the surviving replica',
      );
      expect(dotenvNow()?.OPENAI_API_KEY).toBe('sk-replicas-test-0000001');
      expect(agent.stderr()).toContain('control plane stream lost');
    }, 60_000);
  });
});
