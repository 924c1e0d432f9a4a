import { unlinkSync, writeFileSync } from 'node:fs';
import type { Logger } from './logger.js';
import { newTokenRow } from './services/admin-tokens.js';
import { countRootTokens, insertAdminToken } from './store/admin-tokens.js';
import { insertAuditEvent } from './store/audit.js';
import type { Db } from './store/db.js';

export interface RootTokenSink {
  /** File to write the token to (created 0600, must not exist); stderr when undefined. */
  file?: string;
  stderr: NodeJS.WritableStream;
}

/**
 * On the first start the store has no root token: make one, show it once, keep its hash.
 * The file is written before the row is stored, so a token is never stored without having
 * been handed out.
 */
export async function ensureRootToken(db: Db, sink: RootTokenSink, log: Logger): Promise<void> {
  if ((await countRootTokens(db)) > 0) return;

  const now = Date.now();
  const token = newTokenRow('root', null, 'created at first start', 'runkeys', now, 0);
  if (sink.file !== undefined) {
    writeFileSync(sink.file, `${token.secret}\n`, { mode: 0o600, flag: 'wx' });
  }
  const stored = await db.transaction().execute(async (trx) => {
    if ((await countRootTokens(trx)) > 0) return false;
    await insertAdminToken(trx, token.row);
    await insertAuditEvent(trx, {
      id: `evt_${token.row.id}_first`,
      time: now,
      actor: 'runkeys',
      collection: '',
      action: 'admin_token.create',
      target: token.row.id,
      fingerprint: '',
      details: JSON.stringify({ role: 'root' }),
    });
    return true;
  });
  if (!stored) {
    if (sink.file !== undefined) unlinkSync(sink.file);
    return;
  }

  if (sink.file !== undefined) {
    log.info({ tokenId: token.row.id, file: sink.file }, 'root token written');
    return;
  }
  sink.stderr.write(
    `\nrunkeys: first start. The root token, shown only this once:\n\n  ${token.secret}\n\n` +
      'Keep it safe (e.g. export RUNKEYS_TOKEN=...); only its hash is stored.\n\n',
  );
  log.info({ tokenId: token.row.id }, 'root token created');
}
