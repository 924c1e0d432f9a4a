// The dependency audit CI runs: `npm audit --omit=dev` at high severity or above.
// Exit 1 when a runtime dependency has a high or critical advisory, 0 when none has.
// When the registry in use does not serve the advisory endpoint (some mirrors and proxies
// answer 405 or 404), nothing can be audited: that is said on one line and the exit is 0,
// unless RUNKEYS_AUDIT_REQUIRED=1. A machine without the endpoint does not block CI; one with
// it still fails on a finding.
import { spawnSync } from 'node:child_process';
import { auditVerdict } from './audit-verdict.mjs';

const run = spawnSync('npm', ['audit', '--omit=dev', '--json'], {
  encoding: 'utf8',
  timeout: 120_000,
});
let report;
try {
  report = JSON.parse(run.stdout);
} catch {
  report = undefined;
}
const verdict = auditVerdict(report);
console.log(verdict.line);
if (verdict.status === 'vulnerable') process.exit(1);
if (verdict.status === 'unavailable' && process.env.RUNKEYS_AUDIT_REQUIRED === '1') process.exit(1);
