import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { auditVerdict } from '../../scripts/audit-verdict.mjs';

// The CI audit's reading of `npm audit --json` (npm 10's report shape).

type Verdict = { status: string; line: string };
const verdict = auditVerdict as (report: unknown) => Verdict;

describe('auditVerdict', () => {
  it('fails on a high or critical advisory and names the packages', () => {
    const v = verdict({
      auditReportVersion: 2,
      vulnerabilities: {
        'bad-lib': { name: 'bad-lib', severity: 'high', via: [] },
        'worse-lib': { name: 'worse-lib', severity: 'critical', via: [] },
        'meh-lib': { name: 'meh-lib', severity: 'moderate', via: [] },
      },
      metadata: { vulnerabilities: { moderate: 1, high: 1, critical: 1 } },
    });
    expect(v.status).toBe('vulnerable');
    expect(v.line).toBe(
      'npm audit --omit=dev: 2 high or critical: bad-lib (high), worse-lib (critical)',
    );
  });

  it('passes when only low and moderate advisories remain', () => {
    const v = verdict({
      auditReportVersion: 2,
      vulnerabilities: { 'meh-lib': { name: 'meh-lib', severity: 'moderate', via: [] } },
      metadata: { vulnerabilities: { moderate: 1 } },
    });
    expect(v.status).toBe('clean');
  });

  it('says the audit did not run when the registry refuses the advisory endpoint', () => {
    const v = verdict({
      message:
        '405 Method Not Allowed - POST https://registry.npmjs.org/-/npm/v1/security/advisories/bulk',
      statusCode: 405,
      error: { summary: '', detail: '' },
    });
    expect(v.status).toBe('unavailable');
    expect(v.line).toContain('405 Method Not Allowed');
    expect(verdict(undefined).status).toBe('unavailable');
  });
});
