import type { Bundle } from '../proto/gen/runkeys/v1/runs.js';
import type { StageSecret } from './output.js';

/**
 * Policy: which values of a bundle the output stage masks. Every sensitive entry, under its
 * variable name; and every value a credential file lists in `secrets`, under the file's
 * account (or its path when it names none). A file's whole content is not a secret: it is
 * JSON around the token, and masking its lines would mask ordinary text.
 */
export function bundleSecrets(bundle: Pick<Bundle, 'entries' | 'files'>): StageSecret[] {
  const secrets: StageSecret[] = [];
  for (const e of bundle.entries) {
    if (e.sensitive) secrets.push({ name: e.name, value: e.value, fingerprint: e.fingerprint });
  }
  for (const f of bundle.files) {
    const name = f.account !== '' ? f.account : f.path;
    f.secrets.forEach((value, i) => {
      secrets.push({ name, value, fingerprint: f.secretFingerprints[i] ?? '' });
    });
  }
  return secrets;
}
