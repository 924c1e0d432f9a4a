import type { FileInjection } from '../../proto/gen/runkeys/v1/oauth.js';

const PLACEHOLDER = /^\{\{(access_token|expires_at|field:[A-Za-z0-9_]{1,64})\}\}/;

export interface TemplateValues {
  access_token: string;
  /** Milliseconds since the epoch; null when the expiry is unknown. */
  expires_at: number | null;
  extra: Record<string, string>;
}

function expiry(ms: number | null, unit: string): string | number | null {
  if (ms === null) return null;
  if (unit === 'milliseconds') return ms;
  if (unit === 'rfc3339') return new Date(ms).toISOString();
  return Math.floor(ms / 1000);
}

/**
 * Fills a credential-file template. A placeholder outside a JSON string becomes a JSON value
 * (`{{access_token}}` a string, `{{expires_at}}` a number or, in rfc3339, a string); inside a
 * string, the value's escaped characters. Either way the result is valid JSON whatever the
 * value holds. Returns the text and the secret values put into it, or undefined when the
 * template names a field the token response did not carry.
 */
export function fillTemplate(
  f: FileInjection,
  v: TemplateValues,
): { content: string; secrets: string[] } | undefined {
  const secrets = new Set<string>();
  let out = '';
  let inString = false;
  let i = 0;
  const t = f.template;
  while (i < t.length) {
    const c = t[i]!;
    const m = c === '{' ? PLACEHOLDER.exec(t.slice(i, i + 80)) : null;
    if (m === null) {
      if (inString && c === '\\') {
        out += t.slice(i, i + 2);
        i += 2;
        continue;
      }
      if (c === '"') inString = !inString;
      out += c;
      i += 1;
      continue;
    }
    const name = m[1]!;
    let value: string | number | null;
    if (name === 'access_token') {
      value = v.access_token;
      secrets.add(v.access_token);
    } else if (name === 'expires_at') {
      value = expiry(v.expires_at, f.expiryUnit);
    } else {
      const field = v.extra[name.slice('field:'.length)];
      if (field === undefined) return undefined;
      value = field;
      secrets.add(field);
    }
    const json = JSON.stringify(value);
    out += inString ? (typeof value === 'string' ? json.slice(1, -1) : String(value)) : json;
    i += m[0].length;
  }
  return { content: out, secrets: [...secrets] };
}
