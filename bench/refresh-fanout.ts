// 1,000 attached agents sharing one connected account, against a real authorization server
// (oidc-provider, rotating refresh tokens) and a real `runkeys server` process on loopback.
// Each round an admin refresh is started; the figure is the time from that call to the last
// agent's .env rewritten with the new token, and the provider's count of token requests.
// The agents are light in-process clients that open each sealed update and write their .env
// the way the agent does (agent/dotenv.ts, agent/env-file.ts: temp file, fsync, rename), each in
// its own sandbox directory on tmpfs (/dev/shm when there is one), so one process's serial
// fsyncs do not stand in for a thousand sandboxes' own disks.
// Run: npm run build && npx tsx bench/refresh-fanout.ts [agents] [rounds]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { credentials } from '@grpc/grpc-js';
import { toDotenv } from '../agent/dotenv.js';
import { writeEnvFile } from '../agent/env-file.js';
import { openWith, sharedKey } from '../common/sealing.js';
import { CollectionServiceClient } from '../proto/gen/runkeys/v1/collections.js';
import {
  ConnectedAccountServiceClient,
  OAuthClientServiceClient,
} from '../proto/gen/runkeys/v1/oauth.js';
import {
  ProviderCredential,
  ProviderKeyServiceClient,
} from '../proto/gen/runkeys/v1/provider_keys.js';
import {
  AgentServiceClient,
  type AttachResponse,
  Envelope,
  RunServiceClient,
} from '../proto/gen/runkeys/v1/runs.js';
import {
  APP_REDIRECT_URI,
  CLIENT_ID,
  CLIENT_SECRET,
  codeFlowTokens,
} from '../test/helpers/accounts.js';
import { agentKeys, attachRequest, keyOf, secretOf } from '../test/helpers/attach.js';
import { startOidcServer } from '../test/helpers/oidc.js';
import { call } from '../test/helpers/server.js';
import { median, peakRssKiB, startServerProcess } from './lib.js';

const AGENTS = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 5);
const STREAMS_PER_CHANNEL = 50;

interface Agent {
  envFile: string;
  token: string;
  /** performance.now() of the last .env write. */
  wroteAt: number;
}

const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const work = mkdtempSync(join(scratch, 'runkeys-bench-fanout-'));
const oidc = await startOidcServer({
  accessTokenTtlSeconds: 3600,
  scopes: ['api'],
  clients: [
    { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [APP_REDIRECT_URI] },
  ],
});
const server = await startServerProcess(join(work, 'data'));
const c = credentials.createInsecure();
const t = server.token;
const channels: AgentServiceClient[] = [];
try {
  const collections = new CollectionServiceClient(server.address, c);
  const providers = new ProviderKeyServiceClient(server.address, c);
  const oauthClients = new OAuthClientServiceClient(server.address, c);
  const accounts = new ConnectedAccountServiceClient(server.address, c);
  const runs = new RunServiceClient(server.address, c);
  await call(
    collections.createCollection.bind(collections),
    { name: 'bench', description: '', maxOfflineSeconds: 0 },
    t,
  );
  await call(
    providers.updateProviderKey.bind(providers),
    {
      collection: 'bench',
      provider: 'openai',
      credential: ProviderCredential.fromPartial({ apiKey: 'sk-bench-fanout-000000001' }),
      allowMissing: true,
    },
    t,
  );
  await call(
    oauthClients.createOAuthClient.bind(oauthClients),
    {
      collection: 'bench',
      name: 'tool',
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
        injection: { env: [{ name: 'TOOL_TOKEN', field: '' }], files: [] },
        provider: '',
      },
    },
    t,
  );
  const tokens = await codeFlowTokens(oidc, APP_REDIRECT_URI);
  await call(
    accounts.createConnectedAccount.bind(accounts),
    {
      collection: 'bench',
      name: 'shared',
      client: 'tool',
      tokens: {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        expiresIn: tokens.expires_in,
        scope: '',
        extra: {},
      },
    },
    t,
  );

  // Attach every agent; each writes its .env on every bundle it opens.
  const agents: Agent[] = [];
  for (let i = 0; i < AGENTS; i++) {
    if (i % STREAMS_PER_CHANNEL === 0) {
      channels.push(
        new AgentServiceClient(server.address, c, { 'grpc.use_local_subchannel_pool': 1 }),
      );
    }
    const run = await call(
      runs.createRun.bind(runs),
      {
        collection: 'bench',
        runtime: { provider: 'openai', auth: '', account: '' },
        ttlSeconds: 0,
        labels: {},
      },
      t,
    );
    const keys = agentKeys();
    const shared = sharedKey(keyOf(run.serverPublicKey), keys.secretKey);
    const agent: Agent = {
      envFile: join(work, `sandbox-${i}`, 'env', '.env'),
      token: '',
      wroteAt: 0,
    };
    agents.push(agent);
    const stream = channels
      .at(-1)!
      .attach(
        attachRequest({ runId: run.run!.id, credential: secretOf(run.bootstrapSecret), keys }),
      );
    stream.on('data', (msg: AttachResponse) => {
      if (msg.message?.$case !== 'sealed') return;
      const env = Envelope.decode(openWith(msg.message.value, shared));
      if (env.body?.$case !== 'bundle') return;
      const entries = env.body.value.entries;
      writeEnvFile(agent.envFile, toDotenv(entries).text);
      agent.token = entries.find((e) => e.name === 'TOOL_TOKEN')?.value ?? '';
      agent.wroteAt = performance.now();
    });
    stream.on('error', () => {});
  }
  const until = async (ready: () => boolean, what: string, ms: number) => {
    const deadline = performance.now() + ms;
    while (!ready()) {
      if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  await until(() => agents.every((a) => a.token !== ''), 'every first .env', 60_000);

  const lastMs: number[] = [];
  const medianMs: number[] = [];
  const requests: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = agents[0]!.token;
    oidc.resetCounts();
    const t0 = performance.now();
    await call(
      accounts.refreshConnectedAccount.bind(accounts),
      { collection: 'bench', name: 'shared' },
      t,
    );
    await until(() => agents.every((a) => a.token !== before), 'every .env rewritten', 30_000);
    const times = agents.map((a) => a.wroteAt - t0);
    lastMs.push(Math.max(...times));
    medianMs.push(median(times));
    requests.push(oidc.tokenRequests());
    if (new Set(agents.map((a) => a.token)).size !== 1) throw new Error('agents disagree');
  }

  const result = {
    bench: 'refresh-fanout',
    agents: AGENTS,
    rounds: ROUNDS,
    refresh_to_last_env_ms: Number(median(lastMs).toFixed(1)),
    refresh_to_median_env_ms: Number(median(medianMs).toFixed(1)),
    round_last_env_ms: lastMs.map((x) => Math.round(x)),
    token_requests_per_refresh: Math.max(...requests),
    server_peak_rss_kib: peakRssKiB(server.child.pid!),
    scratch,
    target_last_env_ms_max: 1000,
    target_token_requests: 1,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  for (const ch of channels) ch.close();
  await server.stop();
  await oidc.close();
  rmSync(work, { recursive: true, force: true });
}
