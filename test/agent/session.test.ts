import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { Session, type SessionEvent } from '../../agent/session.js';
import { Bundle } from '../../proto/gen/runkeys/v1/runs.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from './log-capture.js';
import { configFor, type StandIn, standIn } from './stand-in.js';

// The session's side of heartbeats: only a sealed message that opens with the pinned key is
// contact, and only contact keeps the silence watchdog from dropping the stream.

const RUN_ID = 'run_00000000000000ac';
/** The watchdog's limit in these tests, in place of 45 s. */
const SILENCE_MS = 400;

let cp: StandIn | undefined;
let stop: () => Promise<void> = async () => {};

afterEach(async () => {
  await stop();
  cp?.stop();
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function attach(heartbeatMs: number) {
  const plane = await standIn({
    runId: RUN_ID,
    bundle: Bundle.fromPartial({ version: 1 }),
    heartbeatMs,
  });
  cp = plane;
  const events: SessionEvent[] = [];
  const config = configFor(plane, RUN_ID, { work: tmpdir(), home: tmpdir() });
  const session = new Session(config, captureLog().log, (e) => events.push(e), SILENCE_MS);
  const running = session.run();
  stop = async () => {
    session.stop();
    await running;
  };
  await waitFor(() => events.some((e) => e.kind === 'bundle'), 5000, 'the first bundle');
  return { plane, events };
}

const kinds = (events: SessionEvent[]) => events.map((e) => e.kind);

describe('Session heartbeats', () => {
  it('counts each sealed heartbeat as contact, which keeps the stream attached', async () => {
    const { plane, events } = await attach(50);
    await pause(SILENCE_MS * 3);
    expect(kinds(events)).not.toContain('lost');
    expect(kinds(events).filter((k) => k === 'contact').length).toBeGreaterThan(10);
    expect(plane.attaches).toHaveLength(1);
  });

  it.each(['foreign-key', 'garbage', 'empty'] as const)(
    'counts no %s heartbeat as contact, and drops a stream that carries only those',
    async (forgery) => {
      const { plane, events } = await attach(50);
      plane.intercept(forgery);
      const lost = await waitFor(
        () => {
          const at = events.findIndex((e) => e.kind === 'lost');
          return at === -1 ? undefined : at;
        },
        SILENCE_MS * 4,
        'the stream to be dropped',
      );
      await pause(SILENCE_MS * 2);
      // A real heartbeat already on its way may land before the drop; none after it.
      expect(kinds(events.slice(lost))).not.toContain('contact');
      expect(kinds(events)).not.toContain('fatal');
    },
  );
});
