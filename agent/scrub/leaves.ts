/**
 * Values inside a structured value. A JSON object or a dotenv blob is often printed one field
 * at a time, and a URL with credentials is often printed with its password only, so each leaf
 * is a value to scrub as well.
 */

/** String and number leaves of a JSON object or array; [] for anything else. */
export function jsonLeaves(value: string): string[] {
  const text = value.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return [];

  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return []; // not JSON: the value is scrubbed as it is
  }
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (typeof node === 'string') out.push(node);
    else if (typeof node === 'number') out.push(String(node));
    else if (Array.isArray(node)) node.forEach(walk);
    else if (node !== null && typeof node === 'object') Object.values(node).forEach(walk);
  };
  walk(parsed);
  return out;
}

const ASSIGNMENT = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s?(.*)$/;

/**
 * Values of a dotenv blob: every line that is not blank or a comment is `NAME=value`
 * (optionally `export NAME=value`). Quotes are removed; a double-quoted value may span lines and
 * use `\n`. Returns [] when the value is not such a blob.
 */
export function dotenvLeaves(value: string): string[] {
  const lines = value.split(/\r?\n/);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) continue;

    const m = ASSIGNMENT.exec(line);
    if (m === null) return [];

    let rest = m[1]!.trim();
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === '`') {
      while (rest.lastIndexOf(quote) === 0 && i + 1 < lines.length) rest += `\n${lines[++i]}`;
      const close = rest.lastIndexOf(quote);
      rest = close > 0 ? rest.slice(1, close) : rest.slice(1);
      if (quote === '"') rest = rest.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
    } else {
      rest = rest.replace(/\s+#.*$/, '');
    }
    out.push(rest);
  }
  return out;
}

/**
 * The credential part of a URL: the password as written and decoded, or, when there is no
 * password, the user part (a token passed as the user name, as in a Sentry DSN or
 * `https://TOKEN@github.com`).
 */
export function urlSecrets(value: string): string[] {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#@\s]*)@/.exec(value.trim());
  if (m === null) return [];

  const userinfo = m[1]!;
  const colon = userinfo.indexOf(':');
  const secret = colon < 0 ? userinfo : userinfo.slice(colon + 1);
  return [secret, safeDecode(secret)];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // malformed escapes: the text as written is what gets printed
  }
}
