import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import type { Logger } from 'pino';
import type { MaskListener, Scrubber } from './scrub/scrubber.js';
import { TrajectoryScrubber } from './scrub/trajectory.js';

const POLL_MS = 100;
const READ_BYTES = 64 * 1024;

export interface TrajectorySpec {
  source: string;
  destination: string;
}

export function parseTrajectorySpec(spec: string): TrajectorySpec | undefined {
  const colon = spec.indexOf(':');
  if (colon <= 0 || colon === spec.length - 1) return undefined;
  return { source: spec.slice(0, colon), destination: spec.slice(colon + 1) };
}

/**
 * Follows an append-only JSON Lines file the command writes and appends its scrubbed copy to
 * the destination as it grows:
 * 1. every POLL_MS, read what was appended since the last read (the source may not exist yet);
 * 2. pass it through the trajectory scrubber (byte layer plus streamed-delta records);
 * 3. when the source is quiet, flush what the scrubber holds;
 * 4. stop() reads to the end and releases everything.
 */
export function followTrajectory(
  spec: TrajectorySpec,
  scrubber: Scrubber,
  log: Logger,
  onMask?: MaskListener,
) {
  const traj = new TrajectoryScrubber(scrubber, { onMask });
  const out = openSync(spec.destination, 'a', 0o600);
  let fd: number | undefined;
  let offset = 0;
  const buf = Buffer.alloc(READ_BYTES);

  const emit = (bytes: Buffer) => {
    if (bytes.length > 0) writeSync(out, bytes);
  };
  // 1. and 2.
  const pump = (): boolean => {
    if (fd === undefined) {
      try {
        fd = openSync(spec.source, 'r');
      } catch {
        // Not written yet: the command creates it when it starts its trajectory.
        return false;
      }
    }
    let grew = false;
    while (fstatSync(fd).size > offset) {
      const n = readSync(fd, buf, 0, buf.length, offset);
      if (n === 0) break;
      offset += n;
      grew = true;
      emit(traj.write(buf.subarray(0, n)));
    }
    return grew;
  };
  const timer = setInterval(() => {
    try {
      // 3.
      if (!pump() && traj.held > 0) emit(traj.flush());
    } catch (err) {
      log.warn({ err, source: spec.source }, 'trajectory read failed; retrying');
    }
  }, POLL_MS);
  log.info({ source: spec.source, destination: spec.destination }, 'following trajectory');

  return {
    // 4.
    stop(): void {
      clearInterval(timer);
      pump();
      emit(traj.end());
      if (fd !== undefined) closeSync(fd);
      closeSync(out);
    },
  };
}
