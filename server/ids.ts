import { randomFillSync } from 'node:crypto';

/**
 * Random hex for identifiers (audit events, runs): unique, unguessable names, not secrets. Taken
 * from a pool that the system's CSPRNG refills 4 KiB at a time, since a run's attach names two
 * audit events and a call into the CSPRNG for each 8 bytes cost more than the rest of making
 * them.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

export function randomHex(bytes: number): string {
  if (bytes > pool.length) throw new RangeError(`at most ${pool.length} random bytes at once`);
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString('hex', used, used + bytes);
  // Bytes handed out are not handed out again.
  pool.fill(0, used, used + bytes);
  used += bytes;
  return hex;
}

/**
 * The id of a new audit event: the time in milliseconds (12 hex digits), then 8 random bytes.
 * Ids that grow with time go to the end of the unique index on them, the page every insert
 * already touches, where random ids dirtied a page of their own per event.
 */
export const newEventId = (): string =>
  `evt_${Date.now().toString(16).padStart(12, '0')}${randomHex(8)}`;
