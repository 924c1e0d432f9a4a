import { invalid } from '../errors.js';

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface Page {
  /** Sort key of the last item of the previous page; '' for the first page. */
  after: string;
  size: number;
}

interface TokenBody {
  s: string;
  a: string;
}

/**
 * The last key a page token may carry. Page tokens are not signed, so the key is checked like
 * any other input before it reaches a query: every list sorts by an ASCII name or id, and the
 * audit log by its sequence number (kept to what a JavaScript number and a bigint both hold).
 * A NUL byte, or a sequence number that is not one, would otherwise fail in the store
 * (PostgreSQL refuses both) and come back as INTERNAL.
 */
const NAME_KEY = /^[\x21-\x7e]{1,256}$/;
const SEQ_KEY = /^(0|[1-9][0-9]{0,14})$/;
const AUDIT_SCOPE = 'audit:';

function keyFits(scope: string, key: string): boolean {
  return (scope.startsWith(AUDIT_SCOPE) ? SEQ_KEY : NAME_KEY).test(key);
}

/**
 * Page tokens are opaque to clients: base64url JSON of the scope they were issued for and the
 * last key returned. A token from another list or another collection is refused.
 */
export function readPage(pageSize: number, pageToken: string, scope: string): Page {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw invalid(`"page_size" must be between 0 and ${MAX_PAGE_SIZE}; got ${pageSize}`);
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
  if (pageToken === '') return { after: '', size };

  const body = decode(pageToken);
  if (body === undefined || body.s !== scope || !keyFits(scope, body.a)) {
    throw invalid(
      '"page_token" must be the next_page_token of this same list; start again without it',
    );
  }
  return { after: body.a, size };
}

function decode(token: string): TokenBody | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as TokenBody).s === 'string' &&
      typeof (parsed as TokenBody).a === 'string'
    ) {
      return parsed as TokenBody;
    }
  } catch {
    // Anything that does not decode is simply not one of ours.
  }
  return undefined;
}

/** The next page token: set when the page came back full. */
export function nextPageToken(scope: string, page: Page, keys: string[]): string {
  if (keys.length < page.size) return '';
  const body: TokenBody = { s: scope, a: keys[keys.length - 1]! };
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}
