import type { Metadata } from '@grpc/grpc-js';
import type { Authenticate } from '../grpc/adapter.js';
import { getAdminToken, updateAdminToken } from '../store/admin-tokens.js';
import type { Db } from '../store/db.js';
import { type Principal, type RoleName, unauthenticated } from './principal.js';
import { parseToken, secretMatches } from './tokens.js';

/** last_used_at is written at most this often per token, not on every call. */
const LAST_USED_RESOLUTION_MS = 60_000;

const BAD_TOKEN = 'the bearer token is not valid (unknown, revoked or expired)';

function bearerOf(metadata: Metadata): string | undefined {
  const values = metadata.get('authorization');
  if (values.length !== 1 || typeof values[0] !== 'string') return undefined;
  const m = /^Bearer (\S+)$/i.exec(values[0]);
  return m?.[1];
}

export function bearerAuthenticator(db: Db, now: () => number): Authenticate {
  return async (metadata: Metadata): Promise<Principal> => {
    const bearer = bearerOf(metadata);
    if (bearer === undefined) {
      throw unauthenticated(
        'missing bearer token: set RUNKEYS_TOKEN or send "authorization: Bearer <token>"',
      );
    }

    const parsed = parseToken(bearer);
    const row = parsed === undefined ? undefined : await getAdminToken(db, parsed.id);
    // The hash comparison runs whenever the row exists, so timing tells nothing about the secret.
    if (
      parsed === undefined ||
      row === undefined ||
      !secretMatches(parsed.secretPart, row.secret_hash)
    ) {
      throw unauthenticated(BAD_TOKEN);
    }

    const t = now();
    if (row.expires_at !== null && row.expires_at <= t) throw unauthenticated(BAD_TOKEN);

    if (row.last_used_at === null || t - row.last_used_at > LAST_USED_RESOLUTION_MS) {
      await updateAdminToken(db, row.id, { last_used_at: t });
    }
    return { tokenId: row.id, role: row.role as RoleName, collection: row.collection };
  };
}
