import { ApiError, denied } from '../errors.js';

export type RoleName = 'root' | 'admin' | 'runner' | 'viewer';

/** What a call needs from its caller on one collection. */
export type Need = 'read' | 'write' | 'run';

export interface Principal {
  tokenId: string;
  role: RoleName;
  /** Null for a root token. */
  collection: string | null;
}

const GRANTS: Record<RoleName, readonly Need[]> = {
  root: ['read', 'write', 'run'],
  admin: ['read', 'write', 'run'],
  runner: ['run'],
  viewer: ['read'],
};

const VERB: Record<Need, string> = { read: 'read', write: 'change', run: 'manage runs of' };

/**
 * Checks a call against its collection. A token scoped to another collection is refused without
 * saying whether the collection exists.
 */
export function authorize(p: Principal, collection: string, need: Need): void {
  if (p.role !== 'root' && p.collection !== collection) {
    throw denied(`token ${p.tokenId} is scoped to another collection`);
  }
  if (!GRANTS[p.role].includes(need)) {
    throw denied(`a ${p.role} token cannot ${VERB[need]} collection "${collection}"`);
  }
}

export function requireRoot(p: Principal, what: string): void {
  if (p.role !== 'root') throw denied(`only a root token can ${what}`);
}

export const unauthenticated = (message: string): ApiError =>
  new ApiError('UNAUTHENTICATED', message);
