import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Admin bearer tokens look like `rkt_<id>_<secret>`: a 48-bit public id to find the row and a
 * 256-bit secret of which only the SHA-256 is stored. A high-entropy secret needs no slow hash.
 */
const TOKEN_PATTERN = /^rkt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  id: string;
  secret: string;
  hash: string;
}

export const tokenId = (hex: string): string => `tok_${hex}`;

export function issueToken(): IssuedToken {
  const hex = randomBytes(6).toString('hex');
  const secretPart = randomBytes(32).toString('base64url');
  return {
    id: tokenId(hex),
    secret: `rkt_${hex}_${secretPart}`,
    hash: hashSecret(secretPart),
  };
}

export interface ParsedToken {
  id: string;
  secretPart: string;
}

export function parseToken(bearer: string): ParsedToken | undefined {
  const m = TOKEN_PATTERN.exec(bearer);
  if (m === null) return undefined;
  return { id: tokenId(m[1]!), secretPart: m[2]! };
}

export function hashSecret(secretPart: string): string {
  return createHash('sha256').update(secretPart, 'utf8').digest('hex');
}

/** Constant-time comparison of a presented secret against a stored hash. */
export function secretMatches(secretPart: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secretPart), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
