import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { decodeCredential } from '../common/proof.js';
import { PUBLIC_KEY_BYTES } from '../common/sealing.js';
import { readTlsFiles, type TlsFiles } from '../common/tls-files.js';
import { parseDuration } from './duration.js';

/** The shortest --max-offline: 0 would remove the files at the first dropped stream. */
export const MIN_MAX_OFFLINE_MS = 1000;
const DEFAULT_MAX_OFFLINE = '1h';

export type OnRevoke = 'leave' | 'terminate';

/** What the agent runs with, parsed once at start from flags and RUNKEYS_* variables. */
export interface AgentConfig {
  addr: string;
  runId: string;
  bootstrapSecret: Uint8Array;
  serverKey: Uint8Array;
  envFile: string;
  /** The working directory at start: where a bundle's relative file paths go. */
  workDir: string;
  /** The home directory: where a bundle's `~/...` file paths go; undefined when there is none. */
  homeDir: string | undefined;
  /** How long to keep trying to reach the control plane at start. */
  waitMs: number;
  onRevoke: OnRevoke;
  /** How long the agent serves what it holds while the control plane is unreachable. */
  maxOfflineMs: number;
  /**
   * Whether --max-offline or RUNKEYS_MAX_OFFLINE gave maxOfflineMs: a collection's limit can
   * then only shorten it, where it replaces the default.
   */
  maxOfflineExplicit: boolean;
  /** Where the agent writes its status (JSON), for `runkeys agent status`. */
  statusFile: string;
  /**
   * TLS to the control plane: the CA that verifies it and, for mutual TLS, the certificate and
   * key the agent presents (read at start); undefined means plaintext (loopback only).
   */
  tls?: TlsFiles;
  /** The command to run; empty in sidecar mode. */
  command: string[];
}

export interface AgentFlags {
  addr?: string;
  runId?: string;
  bootstrapSecretFile?: string;
  serverKey?: string;
  envFile?: string;
  wait?: string;
  onRevoke?: string;
  maxOffline?: string;
  statusFile?: string;
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
}

/** A bad flag or variable: exit 64 with one line. */
export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

export function agentConfig(
  flags: AgentFlags,
  command: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  home?: string,
): AgentConfig {
  const addr = flags.addr ?? env.RUNKEYS_ADDR;
  if (addr === undefined || addr === '') {
    throw new AgentConfigError('set RUNKEYS_ADDR (or --addr) to the control plane address');
  }
  const runId = flags.runId ?? env.RUNKEYS_RUN_ID ?? '';
  if (runId === '') {
    throw new AgentConfigError('set RUNKEYS_RUN_ID (or --run-id) to the id runs create printed');
  }
  if (!/^run_[0-9a-f]{16}$/.test(runId)) {
    throw new AgentConfigError(
      `${flags.runId !== undefined ? '--run-id' : 'RUNKEYS_RUN_ID'} is not a run id ` +
        '(run_ and 16 hex digits): copy it again from what runs create printed',
    );
  }
  const secretText =
    flags.bootstrapSecretFile !== undefined
      ? readSecretFile(flags.bootstrapSecretFile)
      : (env.RUNKEYS_BOOTSTRAP_SECRET ?? '');
  const bootstrapSecret = decodeCredential(secretText);
  if (secretText.trim() === '') {
    throw new AgentConfigError(
      'set RUNKEYS_BOOTSTRAP_SECRET (or --bootstrap-secret-file) to the secret runs create printed',
    );
  }
  if (bootstrapSecret === undefined) {
    // Never the text itself: it may be most of a real secret.
    const where =
      flags.bootstrapSecretFile !== undefined
        ? `--bootstrap-secret-file ${flags.bootstrapSecretFile} does not hold`
        : 'RUNKEYS_BOOTSTRAP_SECRET is not';
    throw new AgentConfigError(
      `${where} a bootstrap secret (43 base64url characters): copy it again from what runs ` +
        'create printed',
    );
  }
  const keyText = flags.serverKey ?? env.RUNKEYS_SERVER_KEY ?? '';
  if (keyText === '') {
    throw new AgentConfigError(
      'set RUNKEYS_SERVER_KEY (or --server-key) to the control plane key runs create printed',
    );
  }
  const serverKey = Buffer.from(keyText, 'base64');
  if (serverKey.length !== PUBLIC_KEY_BYTES || serverKey.toString('base64') !== keyText) {
    throw new AgentConfigError(
      `${flags.serverKey !== undefined ? '--server-key' : 'RUNKEYS_SERVER_KEY'} is not a control ` +
        'plane key (44 base64 characters): copy it again from what runs create printed',
    );
  }
  const waitSeconds = Number(flags.wait ?? '30');
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0) {
    throw new AgentConfigError('--wait must be a number of seconds');
  }
  const onRevoke = flags.onRevoke ?? 'leave';
  if (onRevoke !== 'leave' && onRevoke !== 'terminate') {
    throw new AgentConfigError('--on-revoke must be leave or terminate');
  }
  const explicitMaxOffline = flags.maxOffline ?? env.RUNKEYS_MAX_OFFLINE;
  const maxOffline = explicitMaxOffline ?? DEFAULT_MAX_OFFLINE;
  const maxOfflineMs = parseDuration(maxOffline);
  if (maxOfflineMs === undefined || maxOfflineMs < MIN_MAX_OFFLINE_MS) {
    throw new AgentConfigError(
      '--max-offline must be a duration of at least 1s, such as 90s, 15m, 1h or 3600; ' +
        `got ${maxOffline}`,
    );
  }
  const envFile = resolve(cwd, flags.envFile ?? 'env/.env');
  const tls = tlsFiles(flags, env, cwd);
  return {
    addr,
    runId,
    bootstrapSecret,
    serverKey,
    envFile,
    workDir: resolve(cwd),
    homeDir: home === undefined || home === '' ? undefined : resolve(home),
    waitMs: waitSeconds * 1000,
    onRevoke,
    maxOfflineMs,
    maxOfflineExplicit: explicitMaxOffline !== undefined,
    statusFile: resolve(cwd, flags.statusFile ?? join(dirname(envFile), 'status.json')),
    ...tls,
    command,
  };
}

/** The TLS files from flags or RUNKEYS_* variables, read and checked now (exit 64 if not). */
function tlsFiles(
  flags: AgentFlags,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Pick<AgentConfig, 'tls'> {
  try {
    const files = readTlsFiles(
      {
        caCert: flags.caCert ?? env.RUNKEYS_CA_CERT,
        clientCert: flags.clientCert ?? env.RUNKEYS_CLIENT_CERT,
        clientKey: flags.clientKey ?? env.RUNKEYS_CLIENT_KEY,
      },
      cwd,
    );
    return { tls: files.ca === undefined ? undefined : files };
  } catch (err) {
    throw new AgentConfigError((err as Error).message);
  }
}

function readSecretFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new AgentConfigError(`cannot read --bootstrap-secret-file ${path}`);
  }
}
