const UNITS = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * A duration as an operator writes it, in milliseconds: a whole number of seconds (`90`), or
 * whole hours, minutes and seconds in that order (`90s`, `15m`, `1h`, `1h30m`). Undefined for
 * anything else.
 */
export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return checked(Number(text) * 1000);

  const m = UNITS.exec(text);
  if (m === null || text === '') return undefined;

  const [, h = '0', min = '0', s = '0'] = m;
  return checked((Number(h) * 3600 + Number(min) * 60 + Number(s)) * 1000);
}

function checked(ms: number): number | undefined {
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** `1h2m3s`, `15m`, `0s`: a duration rounded down to the second, for people to read. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const parts = [h > 0 ? `${h}h` : '', m > 0 ? `${m}m` : '', s > 0 ? `${s}s` : ''];
  return parts.join('') || '0s';
}
