import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportRequest } from '../../agent/report.js';
import { sharedKey } from '../../common/sealing.js';
import type { Bundle, Leak, Receipt, ReportStatement } from '../../proto/gen/runkeys/v1/runs.js';
import {
  type AgentKeys,
  AttachStream,
  agentKeys,
  attachRequest,
  bundleOf,
  keyOf,
  openEnvelope,
  secretOf,
} from '../helpers/attach.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { call, failure, startTestServer, type TestServer } from '../helpers/server.js';

// AgentService.Report: receipts and leak counts, sealed by the agent, counted once.

const SECRET_V1 = 'report-secret-one-0123456789';
const SECRET_V2 = 'report-secret-two-9876543210';

let server: TestServer;
let cp: ControlPlane;

beforeAll(async () => {
  server = await startTestServer({
    limits: {
      adminWritesPerSecond: 1e6,
      adminWriteBurst: 1e6,
      reportsPerSecond: 1e6,
      reportBurst: 1e6,
    },
  });
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: 'sk-openai-report-0123456789' });
  await cp.setEnv('acme', 'API_TOKEN', SECRET_V1);
  await cp.setEnv('acme', 'MODE', 'plain-config', false);
  await cp.createCollection('other');
  await cp.setProvider('other', 'openai', { apiKey: 'sk-openai-other-0123456789' });
});

afterAll(async () => {
  cp.close();
  await server.close();
});

interface Attached {
  runId: string;
  keys: AgentKeys;
  serverKey: Uint8Array;
  stream: AttachStream;
  shared: Uint8Array;
  next(): Promise<Bundle>;
}

async function attach(collection = 'acme'): Promise<Attached> {
  const created = await cp.createRun(collection, 'openai');
  const runId = created.run!.id;
  const keys = agentKeys();
  const serverKey = keyOf(created.serverPublicKey);
  const stream = new AttachStream(
    cp.agent,
    attachRequest({ runId, credential: secretOf(created.bootstrapSecret), keys }),
  );
  const next = async (): Promise<Bundle> => {
    for (;;) {
      const env = openEnvelope(await stream.next(), serverKey, keys);
      if (env.body?.$case === 'bundle') return bundleOf(env);
    }
  };
  return { runId, keys, serverKey, stream, shared: sharedKey(serverKey, keys.secretKey), next };
}

function send(
  a: Pick<Attached, 'runId' | 'shared'>,
  body: Partial<Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>>,
  time?: Date,
) {
  const req = reportRequest(
    a.runId,
    { sequence: body.sequence ?? 1, receipts: body.receipts ?? [], leaks: body.leaks ?? [] },
    a.shared,
    time,
  );
  return new Promise<void>((resolve, reject) => {
    cp.agent.report(req, (err) => (err === null ? resolve() : reject(err)));
  });
}

const receiptOf = (b: Bundle, extra: Partial<Receipt> = {}): Receipt => ({
  version: b.version,
  digest: b.digest,
  applyTime: new Date(),
  envFileWritten: true,
  commandStarted: false,
  ...extra,
});

const entry = (b: Bundle, name: string) => b.entries.find((e) => e.name === name)!;

async function leakEvents(runId: string) {
  return (await cp.auditOf('acme', runId)).filter((e) => e.action === 'run.leak');
}

describe('bundles name their values by fingerprint', () => {
  it('carries the audit fingerprint of each value, and a digest', async () => {
    const a = await attach();
    const bundle = await a.next();
    const written = (await cp.auditOf('acme', 'API_TOKEN')).at(-1)!;
    expect(entry(bundle, 'API_TOKEN').fingerprint).toBe(written.fingerprint);
    expect(entry(bundle, 'OPENAI_API_KEY').fingerprint).toMatch(/^hmac:[0-9a-f]{32}$/);
    expect(entry(bundle, 'MODE').fingerprint).toMatch(/^hmac:[0-9a-f]{32}$/);
    expect(bundle.digest).toMatch(/^b_[0-9a-f]{32}$/);
    a.stream.cancel();
  });
});

describe('Report', () => {
  it('records a receipt and leak counts once, however often it is retried', async () => {
    const a = await attach();
    const bundle = await a.next();
    const fp = entry(bundle, 'API_TOKEN').fingerprint;
    const leak: Leak = { name: 'API_TOKEN', stream: 'stdout', count: 3, fingerprint: fp };
    const first = { sequence: 1, receipts: [receiptOf(bundle)], leaks: [leak] };
    await send(a, first);
    // The answer was lost, say: the agent sends the same report again.
    await send(a, first);
    let run = await cp.getRun('acme', a.runId);
    expect(run.appliedVersion).toBe(bundle.version);
    expect(run.leaks.map((l) => [l.name, l.stream, l.count, l.fingerprint])).toEqual([
      ['API_TOKEN', 'stdout', 3, fp],
    ]);

    await send(a, { sequence: 2, leaks: [{ ...leak, count: 1_000_000 }] });
    await send(a, { sequence: 3, leaks: [{ ...leak, stream: 'stderr', count: 1 }] });
    run = await cp.getRun('acme', a.runId);
    expect(run.leaks.map((l) => [l.stream, l.count])).toEqual([
      ['stderr', 1],
      ['stdout', 1_000_003],
    ]);
    // One audit event per value and stream, with the count first reported; never the value.
    const events = await leakEvents(a.runId);
    expect(events.map((e) => [e.details.stream, e.details.count, e.fingerprint])).toEqual([
      ['stdout', '3', fp],
      ['stderr', '1', fp],
    ]);
    const receipts = (await cp.auditOf('acme', a.runId)).filter((e) => e.action === 'run.receipt');
    expect(receipts).toHaveLength(1);
    expect(receipts[0]!.details).toMatchObject({
      version: String(bundle.version),
      digest: bundle.digest,
      env_file: 'true',
    });
    a.stream.cancel();
  });

  it('answers which runs received which value, across versions', async () => {
    const a = await attach();
    const b = await attach();
    const v1 = await a.next();
    const v1b = await b.next();
    await send(a, { sequence: 1, receipts: [receiptOf(v1)] });
    await send(b, { sequence: 1, receipts: [receiptOf(v1b)] });
    await cp.setEnv('acme', 'API_TOKEN', SECRET_V2);
    const v2 = await a.next();
    expect(v2.version).toBeGreaterThan(v1.version);
    await send(a, { sequence: 2, receipts: [receiptOf(v2)] });
    const fp1 = entry(v1, 'API_TOKEN').fingerprint;
    const fp2 = entry(v2, 'API_TOKEN').fingerprint;
    expect(fp2).not.toBe(fp1);

    const list = async (name: string, fingerprint = '') => {
      const res = await call(
        cp.runs.listReceipts.bind(cp.runs),
        {
          collection: 'acme',
          runId: '',
          name,
          fingerprint,
          version: 0,
          pageSize: 0,
          pageToken: '',
        },
        cp.token,
      );
      return res.receipts
        .filter((r) => r.runId === a.runId || r.runId === b.runId)
        .map((r) => [r.runId === a.runId ? 'a' : 'b', r.version, r.fingerprint]);
    };
    expect(await list('API_TOKEN', fp1)).toEqual(
      expect.arrayContaining([
        ['a', v1.version, fp1],
        ['b', v1b.version, fp1],
      ]),
    );
    expect(await list('API_TOKEN', fp1)).toHaveLength(2);
    expect(await list('API_TOKEN', fp2)).toEqual([['a', v2.version, fp2]]);
    expect(await list('API_TOKEN')).toHaveLength(3);
    expect(await list('NOT_IN_ANY_BUNDLE')).toEqual([]);
    a.stream.cancel();
    b.stream.cancel();
  });

  it('pages through receipts newest first', async () => {
    const a = await attach();
    let bundle = await a.next();
    const versions: number[] = [];
    for (let i = 0; i < 5; i++) {
      await send(a, { sequence: i + 1, receipts: [receiptOf(bundle)] });
      versions.push(bundle.version);
      await cp.setEnv('acme', 'MODE', `plain-config-${i}`, false);
      bundle = await a.next();
    }
    const seen: number[] = [];
    let pageToken = '';
    do {
      const res = await call(
        cp.runs.listReceipts.bind(cp.runs),
        {
          collection: 'acme',
          runId: a.runId,
          name: '',
          fingerprint: '',
          version: 0,
          pageSize: 2,
          pageToken,
        },
        cp.token,
      );
      seen.push(...res.receipts.map((r) => r.version));
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
    expect(seen).toEqual([...versions].reverse());
    a.stream.cancel();
  });

  it('refuses what does not open under the run key, alike', async () => {
    const a = await attach();
    const bundle = await a.next();
    const body = { receipts: [receiptOf(bundle)] };
    const stranger = agentKeys();
    const outcomes = [
      await failure(
        send({ runId: a.runId, shared: sharedKey(a.serverKey, stranger.secretKey) }, body),
      ),
      await failure(send(a, body, new Date(Date.now() - 5 * 60_000))),
    ];
    for (const f of outcomes) {
      expect(f.code).toBe(status.UNAUTHENTICATED);
      expect(f.details).toBe('report refused: it does not open under the key this run is bound to');
    }
    // Another run's agent cannot report for this one with its own key either.
    const other = await attach('other');
    await other.next();
    const f = await failure(send({ runId: a.runId, shared: other.shared }, body));
    expect(f.code).toBe(status.UNAUTHENTICATED);
    expect((await cp.getRun('acme', a.runId)).appliedVersion).toBe(0);
    a.stream.cancel();
    other.stream.cancel();
  });

  it('refuses malformed contents by field, and keeps nothing of them', async () => {
    const a = await attach();
    const bundle = await a.next();
    const fp = entry(bundle, 'API_TOKEN').fingerprint;
    const leak: Leak = { name: 'API_TOKEN', stream: 'stdout', count: 1, fingerprint: fp };
    const cases: [Partial<ReportStatement>, string][] = [
      [{ sequence: 0 }, '"sequence" must be a positive integer'],
      [{ receipts: [receiptOf(bundle, { digest: 'b_nope' })] }, '"receipts.digest"'],
      [
        { receipts: [receiptOf(bundle, { digest: `b_${'0'.repeat(32)}` })] },
        'names no bundle of collection acme',
      ],
      [{ receipts: [receiptOf(bundle, { version: bundle.version + 5 })] }, 'was never delivered'],
      [{ receipts: [receiptOf(bundle, { applyTime: undefined })] }, '"receipts.apply_time"'],
      [{ leaks: [{ ...leak, stream: 'stdin' }] }, '"leaks.stream" must be one of stdout, stderr'],
      [{ leaks: [{ ...leak, count: 0 }] }, '"leaks.count"'],
      [{ leaks: [{ ...leak, fingerprint: 'sha:1' }] }, '"leaks.fingerprint"'],
      [{ leaks: [{ ...leak, name: '' }] }, '"leaks.name"'],
      [{ leaks: Array.from({ length: 257 }, () => leak) }, '"leaks" must hold at most 256'],
      // A good leak beside a bad receipt: nothing of the report is kept.
      [
        { leaks: [leak], receipts: [receiptOf(bundle, { version: -1 })] },
        '"receipts.version" must be a positive integer',
      ],
    ];
    for (const [body, message] of cases) {
      const f = await failure(send(a, body));
      expect(f.code, message).toBe(status.INVALID_ARGUMENT);
      expect(f.details).toContain(message);
    }
    const run = await cp.getRun('acme', a.runId);
    expect(run.leaks).toEqual([]);
    expect(run.appliedVersion).toBe(0);
    expect(await leakEvents(a.runId)).toEqual([]);
    // The refused reports took no number: the first good one is still number 1.
    await send(a, { sequence: 1, leaks: [leak] });
    expect((await cp.getRun('acme', a.runId)).leaks).toHaveLength(1);
    a.stream.cancel();
  });

  it('limits how fast one run reports', async () => {
    const limited = await startTestServer({ limits: { reportsPerSecond: 1, reportBurst: 2 } });
    const lcp = controlPlane(limited.address, limited.rootToken);
    try {
      await lcp.createCollection('acme');
      await lcp.setProvider('acme', 'openai', { apiKey: 'sk-openai-limit-0123456789' });
      const created = await lcp.createRun('acme', 'openai');
      const keys = agentKeys();
      const serverKey = keyOf(created.serverPublicKey);
      const runId = created.run!.id;
      const stream = new AttachStream(
        lcp.agent,
        attachRequest({ runId, credential: secretOf(created.bootstrapSecret), keys }),
      );
      await stream.next();
      const shared = sharedKey(serverKey, keys.secretKey);
      const post = (sequence: number) =>
        new Promise<void>((resolve, reject) =>
          lcp.agent.report(
            reportRequest(runId, { sequence, receipts: [], leaks: [] }, shared),
            (err) => (err === null ? resolve() : reject(err)),
          ),
        );
      await post(1);
      await post(2);
      const f = await failure(post(3));
      expect(f.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(f.details).toMatch(/^run run_[0-9a-f]{16} reports faster than 1 a second; retry in/);
      stream.cancel();
    } finally {
      lcp.close();
      await limited.close();
    }
  });
});
