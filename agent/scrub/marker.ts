/**
 * Marker text. A marker replaces a match inside JSON strings as often as in plain text, so it
 * never holds a quote, a backslash or a control character, whatever the template or the name.
 */

export const DEFAULT_MARKER = '[REDACTED:{name}]';

const NAME_SLOT = '{name}';

/** Checks a marker template once, when a scrubber is made. */
export function checkMarker(template: string): void {
  if (template.length === 0 || !/^[\x20-\x7e]+$/.test(template) || /["\\]/.test(template)) {
    throw new Error(
      '"marker" must be printable ASCII without quote or backslash; ' +
        `got ${JSON.stringify(template)}`,
    );
  }
}

/** Keeps letters, digits, `_`, `.` and `-` of a name; anything else becomes `_`. */
export function markerName(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return safe.length > 0 ? safe : '_';
}

export function renderMarker(template: string, name: string): Buffer {
  return Buffer.from(template.split(NAME_SLOT).join(markerName(name)), 'ascii');
}
