import { hostname } from 'node:os';
import { randomHex } from './ids.js';
import type { Logger } from './logger.js';
import type { Db } from './store/db.js';
import {
  deletePresence,
  deleteStalePresence,
  insertPresence,
  presentSince,
  touchPresence,
} from './store/presence.js';

/** How often a running server renews its heartbeat row. */
export const PRESENCE_EVERY_MS = 5_000;
/** A heartbeat older than this belongs to a server that is gone (crashed, killed, unplugged). */
export const PRESENCE_STALE_MS = 20_000;

/**
 * A running control plane says so in the store: one row, renewed every few seconds and deleted
 * when it stops. Commands that must not run beside a server (rotate-master-key) look for fresh
 * rows; a server that died without deleting its row stops counting once the row is stale.
 * Always on the wall clock, whatever clock the server's own logic is given.
 */
export class Presence {
  readonly id = `srv_${randomHex(8)}`;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const now = Date.now();
    await deleteStalePresence(this.db, now - PRESENCE_STALE_MS);
    await insertPresence(this.db, {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      started_at: now,
      seen_at: now,
    });
    this.timer = setInterval(() => {
      touchPresence(this.db, this.id, Date.now()).catch((err: unknown) =>
        this.log.warn({ err }, 'could not renew this server’s presence in the store'),
      );
    }, PRESENCE_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    try {
      await deletePresence(this.db, this.id);
    } catch (err) {
      // The row goes stale on its own.
      this.log.debug({ err }, 'could not remove this server’s presence from the store');
    }
  }
}

/** The servers running on this store now, as operators should read them. */
export async function runningServers(db: Db): Promise<string[]> {
  const now = Date.now();
  const rows = await presentSince(db, now - PRESENCE_STALE_MS);
  return rows.map(
    (r) =>
      `${r.host} pid ${r.pid} (seen ${Math.max(0, Math.round((now - r.seen_at) / 1000))}s ago)`,
  );
}
