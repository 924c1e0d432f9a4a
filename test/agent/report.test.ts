import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LeakCounter, Reporter } from '../../agent/report.js';
import { Scrubber } from '../../agent/scrub/scrubber.js';
import type { Receipt, ReportStatement } from '../../proto/gen/runkeys/v1/runs.js';

const silent = pino({ level: 'silent' });
type Body = Pick<ReportStatement, 'sequence' | 'receipts' | 'leaks'>;

const receipt = (version: number): Receipt => ({
  version,
  digest: `b_${String(version).padStart(32, '0')}`,
  applyTime: new Date(),
  envFileWritten: true,
  commandStarted: version === 1,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function grpcError(code: number): Error {
  return Object.assign(new Error(`code ${code}`), { code });
}

/** A send that records each body and answers from a script (ok unless told otherwise). */
function recorder(answers: (number | undefined)[] = []) {
  const sent: Body[] = [];
  const send = async (body: Body) => {
    sent.push(structuredClone(body));
    const code = answers.shift();
    if (code !== undefined) throw grpcError(code);
  };
  return { sent, send };
}

function counted(
  scrubber: Scrubber,
  counter: LeakCounter,
  stream: 'stdout' | 'stderr',
  text: string,
) {
  const s = scrubber.createStream(counter.listener(stream));
  return Buffer.concat([s.write(Buffer.from(text)), s.end()]).toString();
}

describe('LeakCounter', () => {
  it('counts markers by name, stream and fingerprint, and starts again after take()', () => {
    const scrubber = new Scrubber();
    scrubber.registerAll([
      { name: 'A', value: 'alpha-secret-0001', sensitive: true, tag: 'hmac:a' },
      { name: 'B', value: 'bravo-secret-0002', sensitive: true, tag: 'hmac:b' },
      { name: 'UNTAGGED', value: 'charlie-secret-03', sensitive: true },
    ]);
    const counter = new LeakCounter(scrubber, silent);
    let starts = 0;
    counter.onCount = () => starts++;
    const out = counted(
      scrubber,
      counter,
      'stdout',
      'alpha-secret-0001 x alpha-secret-0001 bravo-secret-0002 charlie-secret-03',
    );
    expect(out).toBe('[REDACTED:A] x [REDACTED:A] [REDACTED:B] [REDACTED:UNTAGGED]');
    counted(scrubber, counter, 'stderr', Buffer.from('alpha-secret-0001').toString('base64'));
    expect(counter.take(10)).toEqual([
      { name: 'A', stream: 'stdout', count: 2, fingerprint: 'hmac:a' },
      { name: 'B', stream: 'stdout', count: 1, fingerprint: 'hmac:b' },
      { name: 'A', stream: 'stderr', count: 1, fingerprint: 'hmac:a' },
    ]);
    expect(starts).toBe(3);
    expect(counter.pending).toBe(0);
    counted(scrubber, counter, 'stdout', 'alpha-secret-0001');
    expect(counter.take(10)).toEqual([
      { name: 'A', stream: 'stdout', count: 1, fingerprint: 'hmac:a' },
    ]);
  });

  it('counts a value split across writes once', () => {
    const scrubber = new Scrubber();
    scrubber.register('A', 'alpha-secret-0001');
    scrubber.registerAll([{ name: 'A', value: 'alpha-secret-0001', sensitive: true, tag: 'fp' }]);
    const counter = new LeakCounter(scrubber, silent);
    const s = scrubber.createStream(counter.listener('stdout'));
    const out = [
      s.write(Buffer.from('xx alpha-se')),
      s.write(Buffer.from('cret-0001 yy')),
      s.end(),
    ];
    expect(Buffer.concat(out).toString()).toBe('xx [REDACTED:A] yy');
    expect(counter.take(10).map((l) => l.count)).toEqual([1]);
  });
});

describe('Reporter', () => {
  it('sends receipts that come together in one numbered report', async () => {
    const { sent, send } = recorder();
    const reporter = new Reporter({ send, log: silent });
    reporter.receipt(receipt(1));
    reporter.receipt(receipt(2));
    await sleep(400);
    reporter.receipt(receipt(3));
    await sleep(400);
    expect(sent.map((b) => [b.sequence, b.receipts.map((r) => r.version)])).toEqual([
      [1, [1, 2]],
      [2, [3]],
    ]);
    reporter.stop();
  });

  it('retries a report that failed in transit with the same number and contents', async () => {
    const { sent, send } = recorder([status.UNAVAILABLE, status.RESOURCE_EXHAUSTED]);
    const reporter = new Reporter({ send, log: silent, leakIntervalMs: 100 });
    reporter.receipt(receipt(1));
    await sleep(900);
    expect(sent.map((b) => b.sequence)).toEqual([1, 1, 1]);
    expect(sent[2]).toEqual(sent[0]);
    reporter.receipt(receipt(2));
    await sleep(400);
    expect(sent.at(-1)!.sequence).toBe(2);
    reporter.stop();
  });

  it('drops a report the control plane refused as malformed, and goes on', async () => {
    const { sent, send } = recorder([status.INVALID_ARGUMENT]);
    const reporter = new Reporter({ send, log: silent, leakIntervalMs: 100 });
    reporter.receipt(receipt(1));
    await sleep(400);
    reporter.receipt(receipt(2));
    await sleep(400);
    expect(sent.map((b) => [b.sequence, b.receipts.map((r) => r.version)])).toEqual([
      [1, [1]],
      [2, [2]],
    ]);
    reporter.stop();
  });

  it('sends leak counts at most once per interval, as deltas', async () => {
    const scrubber = new Scrubber();
    scrubber.registerAll([{ name: 'A', value: 'alpha-secret-0001', sensitive: true, tag: 'fp' }]);
    const counter = new LeakCounter(scrubber, silent);
    const { sent, send } = recorder();
    const reporter = new Reporter({ send, leaks: counter, log: silent, leakIntervalMs: 300 });
    counter.onCount = () => reporter.poke();
    const stream = scrubber.createStream(counter.listener('stdout'));
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      stream.write(Buffer.from('alpha-secret-0001\n'.repeat(1000)));
      await sleep(40);
    }
    await reporter.flush();
    const took = Date.now() - started;
    const total = sent.reduce((n, b) => n + b.leaks.reduce((m, l) => m + l.count, 0), 0);
    expect(total).toBe(20_000);
    // 20 bursts over ~0.8 s: a report per interval, not one per burst.
    expect(sent.length).toBeLessThanOrEqual(Math.ceil(took / 300) + 1);
    expect(sent.map((b) => b.sequence)).toEqual(sent.map((_, i) => i + 1));
  });

  it('flush() sends a retried report and then what it could not carry', async () => {
    const { sent, send } = recorder([status.UNAVAILABLE]);
    const reporter = new Reporter({ send, log: silent, leakIntervalMs: 10_000 });
    reporter.receipt(receipt(1));
    await sleep(300);
    reporter.receipt(receipt(2));
    await reporter.flush();
    expect(sent.map((b) => [b.sequence, b.receipts.map((r) => r.version)])).toEqual([
      [1, [1]],
      [1, [1]],
      [2, [2]],
    ]);
    reporter.receipt(receipt(3));
    await sleep(300);
    expect(sent).toHaveLength(3);
  });
});
