import { randomBytes } from 'node:crypto';

/**
 * Canaries: unique values planted in the credential layers so a test can prove they never come
 * back out. Each carries a label, so a failure names the layer and the form that leaked, never
 * the value itself.
 */
export interface Canary {
  label: string;
  value: string;
}

export function canary(label: string, shape: (tag: string) => string = (t) => t): Canary {
  const tag = `canary-${label}-${randomBytes(12).toString('hex')}`;
  return { label, value: shape(tag) };
}

/**
 * The forms a value takes on the way out: raw, JSON-escaped, each line of a multi-line value,
 * hex in both cases, and base64 and base64url at each of the three byte alignments (only whole
 * groups are kept, since the edges depend on the bytes around the value).
 */
export function canaryForms(value: string): { form: string; text: string }[] {
  const forms = [
    { form: 'raw', text: value },
    { form: 'json', text: JSON.stringify(value).slice(1, -1) },
  ];
  const lines = value.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length > 1) {
    for (const [i, text] of lines.entries()) forms.push({ form: `line ${i + 1}`, text });
  }
  const bytes = Buffer.from(value, 'utf8');
  forms.push({ form: 'hex', text: bytes.toString('hex') });
  forms.push({ form: 'HEX', text: bytes.toString('hex').toUpperCase() });
  for (let offset = 0; offset < 3; offset++) {
    const part = bytes.subarray(offset);
    const whole = Math.floor(part.length / 3) * 4;
    forms.push({ form: `base64+${offset}`, text: part.toString('base64').slice(0, whole) });
    forms.push({ form: `base64url+${offset}`, text: part.toString('base64url').slice(0, whole) });
  }
  return forms;
}

/** Shorter canaries would match by chance somewhere in a database file. */
const MIN_CANARY_CHARS = 16;

/** Which canaries (label and form) appear in a text or a file's bytes. */
export function leaksIn(haystack: string | Buffer, canaries: readonly Canary[]): string[] {
  const buf = typeof haystack === 'string' ? Buffer.from(haystack, 'utf8') : haystack;
  const found: string[] = [];
  for (const c of canaries) {
    if (c.value.length < MIN_CANARY_CHARS) throw new Error(`canary ${c.label} is too short`);
    for (const f of canaryForms(c.value)) {
      if (buf.includes(Buffer.from(f.text, 'utf8'))) found.push(`${c.label} (${f.form})`);
    }
  }
  return found;
}
