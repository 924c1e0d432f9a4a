import type { Logger } from 'pino';
import { type Bundle, Layer } from '../proto/gen/runkeys/v1/runs.js';
import { AccountStatusLog } from './account-status.js';
import { bundleSecrets } from './bundle-secrets.js';
import type { AgentConfig } from './config.js';
import { CredentialFiles } from './credential-files.js';
import { toDotenv } from './dotenv.js';
import { removeEnvFile, writeEnvFile } from './env-file.js';
import type { OutputStage } from './output.js';
import { liveView } from './token-expiry.js';

const LAYER_NAMES: Record<number, string> = {
  [Layer.LAYER_PROVIDER]: 'provider',
  [Layer.LAYER_ENV]: 'env',
  [Layer.LAYER_ACCOUNT]: 'account',
  [Layer.LAYER_UNSPECIFIED]: 'removed',
};

export type ApplyConfig = Pick<AgentConfig, 'envFile' | 'workDir' | 'homeDir' | 'command'>;

/** setTimeout's longest delay; a later expiry is re-armed when the timer fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export interface ApplierHooks {
  now?: () => number;
  /** Called after an expiry rewrote the .env and the credential files. */
  expired?: () => void;
}

/** The bundle the agent holds and when it arrived. */
export interface Held {
  bundle: Bundle;
  receivedAt: number;
}

/**
 * What the agent does with each bundle, in this order:
 * 1. register every secret (sensitive entries, credential files' secrets) with the output
 *    stage, before any of them is written anywhere;
 * 2. report names two layers both gave;
 * 3. write the .env, without the entries whose expiry has passed (liveView());
 * 4. write the credential files, less those of accounts whose token expired, and remove those
 *    the bundle no longer carries;
 * 5. log each connected account whose status changed;
 * 6. arm a timer for the next expiry, which does 3. and 4. again.
 * removeAll() undoes 3. and 4. (revocation, or the outage policy's deadline); restore() does
 * them again from the bundle held, and so does the next bundle.
 */
export class BundleApplier {
  private readonly files: CredentialFiles;
  private readonly accounts: AccountStatusLog;
  private current: Held | undefined;
  /** True after removeAll(), until restore() or the next bundle. */
  private withdrawn = false;
  /** Expired names last logged, so each expiry is logged once. */
  private lapsed = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(
    private readonly config: ApplyConfig,
    private readonly stage: OutputStage,
    private readonly log: Logger,
    private readonly hooks: ApplierHooks = {},
  ) {
    this.now = hooks.now ?? Date.now;
    this.files = new CredentialFiles({ home: config.homeDir, work: config.workDir }, log);
    this.accounts = new AccountStatusLog(log);
  }

  /** The bundle held, undefined before the first. */
  held(): Held | undefined {
    return this.current;
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
    this.current = { bundle, receivedAt: this.now() };
    this.withdrawn = false;
    this.write();
    // 5.
    this.accounts.observe(bundle.accounts);
  }

  /** Removes the .env and every credential file the agent wrote; returns the files' paths. */
  removeAll(): string[] {
    this.withdrawn = true;
    this.stop();
    removeEnvFile(this.config.envFile);
    return this.files.removeAll();
  }

  /** After removeAll(): writes the .env and the credential files again from the bundle held. */
  restore(): void {
    if (!this.withdrawn || this.current === undefined) return;

    this.withdrawn = false;
    this.write();
  }

  /** Clears the expiry timer. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private write(): void {
    const held = this.current;
    if (held === undefined || this.withdrawn) return;

    const { bundle } = held;
    const view = liveView(bundle, this.now());
    const { expiredVariables, expiredAccounts } = view;
    const lapsed = JSON.stringify([expiredVariables, expiredAccounts]);
    if (lapsed !== this.lapsed && expiredVariables.length + expiredAccounts.length > 0) {
      this.log.warn(
        { variables: expiredVariables, accounts: expiredAccounts },
        'tokens past their expiry removed',
      );
    }
    this.lapsed = lapsed;
    // 3.
    const { text, keptOut } = toDotenv(view.entries);
    writeEnvFile(this.config.envFile, text);
    if (keptOut.length > 0) {
      // In sidecar mode there is no command whose environment could carry them.
      this.log.warn(
        { variables: keptOut },
        this.config.command.length > 0
          ? 'values no .env quoting carries exactly: environment only'
          : 'values no .env quoting carries exactly: left out (sidecar mode has no command ' +
              'to pass them to)',
      );
    }
    this.log.info(
      { version: bundle.version, envFile: this.config.envFile, entries: view.entries.length },
      '.env written',
    );
    // 4.
    this.files.apply(view.files);
    // 6.
    this.arm(view.nextExpiry);
  }

  private arm(at: number | undefined): void {
    this.stop();
    if (at === undefined) return;

    const delay = Math.min(Math.max(0, at - this.now()), MAX_DELAY_MS);
    this.timer = setTimeout(() => this.expire(), delay);
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    try {
      this.write();
      this.hooks.expired?.();
    } catch (err) {
      // The timer has no caller to throw to; the next bundle or expiry writes again.
      const code = (err as NodeJS.ErrnoException).code;
      this.log.error({ envFile: this.config.envFile, code }, '.env not rewritten after an expiry');
    }
  }
}
