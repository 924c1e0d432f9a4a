import type { Logger } from 'pino';
import { type Bundle, Layer } from '../proto/gen/runkeys/v1/runs.js';
import { AccountStatusLog } from './account-status.js';
import { bundleSecrets } from './bundle-secrets.js';
import type { AgentConfig } from './config.js';
import { CredentialFiles } from './credential-files.js';
import { toDotenv } from './dotenv.js';
import { removeEnvFile, writeEnvFile } from './env-file.js';
import type { OutputStage } from './output.js';

const LAYER_NAMES: Record<number, string> = {
  [Layer.LAYER_PROVIDER]: 'provider',
  [Layer.LAYER_ENV]: 'env',
  [Layer.LAYER_ACCOUNT]: 'account',
  [Layer.LAYER_UNSPECIFIED]: 'removed',
};

export type ApplyConfig = Pick<AgentConfig, 'envFile' | 'workDir' | 'homeDir'>;

/**
 * What the agent does with each bundle, in this order:
 * 1. register every secret (sensitive entries, credential files' secrets) with the output
 *    stage, before any of them is written anywhere;
 * 2. report names two layers both gave;
 * 3. write the .env;
 * 4. write the credential files and remove those the bundle no longer carries;
 * 5. log each connected account whose status changed.
 * removeAll() undoes 3. and 4. when the run is revoked.
 */
export class BundleApplier {
  private readonly files: CredentialFiles;
  private readonly accounts: AccountStatusLog;

  constructor(
    private readonly config: ApplyConfig,
    private readonly stage: OutputStage,
    private readonly log: Logger,
  ) {
    this.files = new CredentialFiles({ home: config.homeDir, work: config.workDir }, log);
    this.accounts = new AccountStatusLog(log);
  }

  apply(bundle: Bundle): void {
    // 1.
    this.stage.update(bundleSecrets(bundle));
    // 2.
    for (const c of bundle.conflicts) {
      this.log.warn(
        { variable: c.name, winner: LAYER_NAMES[c.winner], loser: LAYER_NAMES[c.loser] },
        'two layers give the same name',
      );
    }
    // 3.
    const { text, keptOut } = toDotenv(bundle.entries);
    writeEnvFile(this.config.envFile, text);
    if (keptOut.length > 0) {
      this.log.warn(
        { variables: keptOut },
        'values no .env quoting carries exactly: environment only',
      );
    }
    this.log.info(
      { version: bundle.version, envFile: this.config.envFile, entries: bundle.entries.length },
      '.env written',
    );
    // 4.
    this.files.apply(bundle.files);
    // 5.
    this.accounts.observe(bundle.accounts);
  }

  /** Removes the .env and every credential file the agent wrote; returns the files' paths. */
  removeAll(): string[] {
    removeEnvFile(this.config.envFile);
    return this.files.removeAll();
  }
}
