// What an `npm audit --json` report means for CI (see scripts/audit.mjs).

/**
 * @param {unknown} report the parsed JSON npm printed, or undefined when it printed none
 * @returns {{ status: 'unavailable' | 'clean' | 'vulnerable', line: string }}
 */
export function auditVerdict(report) {
  const r = /** @type {Record<string, any> | undefined} */ (
    typeof report === 'object' && report !== null ? report : undefined
  );
  if (r === undefined || (typeof r.statusCode === 'number' && r.statusCode >= 400) || r.error) {
    const why = r?.message ?? r?.error?.summary ?? 'no report';
    return {
      status: 'unavailable',
      line: `npm audit: the advisory endpoint is not available here (${why}); not audited`,
    };
  }
  const found = Object.entries(r.vulnerabilities ?? {})
    .filter(([, v]) => v?.severity === 'high' || v?.severity === 'critical')
    .map(([name, v]) => `${name} (${v.severity})`);
  if (found.length === 0)
    return { status: 'clean', line: 'npm audit --omit=dev: no high or critical advisories' };
  return {
    status: 'vulnerable',
    line: `npm audit --omit=dev: ${found.length} high or critical: ${found.join(', ')}`,
  };
}
