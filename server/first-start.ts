import { unlinkSync, writeFileSync } from 'node:fs';
import { sql } from 'kysely';
import { OperatorError } from '../common/operator-error.js';
import type { Logger } from './logger.js';
import { newTokenRow } from './services/admin-tokens.js';
import { countRootTokens, insertAdminToken } from './store/admin-tokens.js';
import { insertAuditEvent } from './store/audit.js';
import type { Db } from './store/db.js';
import { isPostgres } from './store/postgres.js';

/**
 * PostgreSQL advisory lock key of the first start ("rkfirst" in ASCII): replicas starting
 * together on an empty database take turns, so the first makes the root token and the others
 * find it. (Kysely's migration lock has a key of its own.)
 */
const FIRST_START_LOCK = 0x726b6669727374n;

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
  if (sink.file !== undefined) writeTokenFile(sink.file, token.secret);
  const stored = await db.transaction().execute(async (trx) => {
    // SQLite has one writer at a time, and a transaction that read before another's commit
    // fails to write (SQLITE_BUSY) rather than write a second token.
    if (isPostgres(trx)) await sql`select pg_advisory_xact_lock(${FIRST_START_LOCK})`.execute(trx);
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

/** --init-token-file cannot take the first root token; the server does not start. */
export class InitTokenFileError extends OperatorError {}

function writeTokenFile(file: string, secret: string): void {
  try {
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InitTokenFileError(
      code === 'EEXIST'
        ? `--init-token-file ${file} already exists: the first root token is only written to a ` +
            'new file; move that one away or name another'
        : `cannot write --init-token-file ${file} (${code ?? 'error'}): check that its directory ` +
            'exists and is writable',
    );
  }
}
