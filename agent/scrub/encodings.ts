/**
 * The encoded forms a value takes in output. Each function returns distinct strings; the
 * caller drops the ones too short to scrub.
 */

interface JsonStyle {
  /** `\u000a` rather than `\n` for control characters. */
  controlsAsU?: boolean;
  /** `<`, `>`, `&` (and U+2028, U+2029) as `\u003c`... (Go's encoding/json default). */
  html?: boolean;
  /** Everything above U+007F as `\uXXXX` (Python's json.dumps default). */
  ascii?: boolean;
  /** `/` as `\/` (PHP's json_encode default). */
  slash?: boolean;
  /** Upper-case hex, and `"`, `'`, `+`, backquote as `\u00XX` too (.NET System.Text.Json). */
  dotnet?: boolean;
}

const JSON_STYLES: readonly JsonStyle[] = [
  { html: true },
  { controlsAsU: true },
  { ascii: true },
  { ascii: true, slash: true },
  { ascii: true, html: true, dotnet: true },
];

const SHORT_ESCAPES: Record<number, string> = {
  8: '\\b',
  9: '\\t',
  10: '\\n',
  12: '\\f',
  13: '\\r',
};

/** The value inside a JSON string, as the common encoders write it, and escaped twice. */
export function jsonEscapes(value: string): string[] {
  const plain = JSON.stringify(value).slice(1, -1);
  const twice = JSON.stringify(plain).slice(1, -1);
  return distinct([plain, ...JSON_STYLES.map((style) => escapeJson(value, style)), twice]);
}

function escapeJson(value: string, style: JsonStyle): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const next = value.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += style.ascii ? hex(c, style) + hex(next, style) : value.slice(i, i + 2);
      i++;
    } else {
      out += escapeUnit(c, style) ?? value[i];
    }
  }
  return out;
}

function escapeUnit(c: number, style: JsonStyle): string | undefined {
  if (c === 0x22) return style.dotnet ? hex(c, style) : '\\"';
  if (c === 0x5c) return '\\\\';
  if (c < 0x20) return (!style.controlsAsU && SHORT_ESCAPES[c]) || hex(c, style);
  if (style.slash && c === 0x2f) return '\\/';
  if (style.html && (c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029)) {
    return hex(c, style);
  }
  if (style.dotnet && (c === 0x27 || c === 0x2b || c === 0x60)) return hex(c, style);
  // Lone surrogates: every encoder escapes them.
  if ((style.ascii && c > 0x7f) || (c >= 0xd800 && c <= 0xdfff)) return hex(c, style);
  return undefined;
}

function hex(code: number, style: JsonStyle): string {
  const digits = code.toString(16).padStart(4, '0');
  return `\\u${style.dotnet ? digits.toUpperCase() : digits}`;
}

/** Characters each URL encoder leaves alone, besides ASCII letters and digits. */
const URL_SAFE: readonly { keep: string; plus: boolean }[] = [
  { keep: '-._~', plus: false }, // RFC 3986 unreserved
  { keep: "-._~!'()*", plus: false }, // encodeURIComponent
  { keep: '-._*', plus: true }, // application/x-www-form-urlencoded (URLSearchParams)
  { keep: '-._~/', plus: false }, // Python's urllib.parse.quote
];

/** Percent-encodings of the UTF-8 bytes, upper- and lower-case hex, `+` or `%20` for space. */
export function urlEncodings(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const out: string[] = [];
  for (const { keep, plus } of URL_SAFE) {
    for (const upper of [true, false]) {
      let s = '';
      for (const b of bytes) {
        const ch = String.fromCharCode(b);
        if (/[A-Za-z0-9]/.test(ch) || keep.includes(ch)) s += ch;
        else if (plus && b === 0x20) s += '+';
        else s += `%${b.toString(16).padStart(2, '0')[upper ? 'toUpperCase' : 'toLowerCase']()}`;
      }
      out.push(s);
    }
  }
  return distinct(out);
}

/**
 * Base64 (standard and URL-safe) of the bytes at each of the three alignments they can have
 * inside a longer encoded text. Characters that also depend on the neighbouring bytes, and the
 * padding, are trimmed: what is left appears in any base64 text that contains the bytes.
 */
export function base64Windows(bytes: Uint8Array): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const shifted = Buffer.alloc(k + bytes.length);
    shifted.set(bytes, k);
    const from = Math.ceil((8 * k) / 6);
    const to = Math.floor((8 * (k + bytes.length) - 6) / 6) + 1;
    out.push(shifted.toString('base64').slice(from, to));
    out.push(shifted.toString('base64url').slice(from, to));
  }
  return distinct(out.filter((s) => s.length > 0));
}

/**
 * A base64 window cut into the 76-character lines of MIME and coreutils `base64`, as they
 * appear when the value is encoded from its first byte.
 */
export function base64Lines(window: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < window.length; i += 76) lines.push(window.slice(i, i + 76));
  return lines;
}

export function distinct(items: readonly string[]): string[] {
  return [...new Set(items)];
}
