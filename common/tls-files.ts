import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';

/** The TLS files a client (the CLI or the agent) gives the control plane, as paths. */
export interface TlsPaths {
  caCert?: string;
  clientCert?: string;
  clientKey?: string;
}

/** The flags (and, for each, a RUNKEYS_* variable) that give them, in the CLI and the agent. */
const FLAGS: Record<keyof TlsPaths, string> = {
  caCert: '--ca-cert',
  clientCert: '--client-cert',
  clientKey: '--client-key',
};
const flag = (field: keyof TlsPaths): string => FLAGS[field];

/** Their contents, read and checked. */
export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * Reads and checks a client's TLS files before any connection: each readable, the client
 * certificate and key given together and only with a CA (a certificate is only sent over TLS),
 * and the three usable by OpenSSL (PEM, and a key that matches the certificate). Throws an
 * Error whose message names the flag (the CLI and the agent name them alike).
 */
export function readTlsFiles(paths: TlsPaths, cwd: string): TlsFiles {
  const read = (field: keyof TlsPaths): Buffer | undefined => {
    const value = paths[field];
    if (value === undefined || value === '') return undefined;
    const path = resolve(cwd, value);
    try {
      return readFileSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new Error(`cannot read ${flag(field)} ${path} (${code})`);
    }
  };
  const files = { ca: read('caCert'), cert: read('clientCert'), key: read('clientKey') };
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new Error(`${flag('clientCert')} and ${flag('clientKey')} go together`);
  }
  if (files.cert !== undefined && files.ca === undefined) {
    throw new Error(
      `${flag('clientCert')} needs ${flag('caCert')}: a client certificate is only sent over TLS`,
    );
  }
  if (files.ca !== undefined) {
    try {
      // OpenSSL takes a CA file without a certificate in it and trusts nothing.
      new X509Certificate(files.ca);
    } catch {
      throw new Error(`${flag('caCert')} holds no PEM certificate`);
    }
    try {
      createSecureContext({ ca: files.ca, cert: files.cert, key: files.key });
    } catch (err) {
      // OpenSSL's reason names no key material.
      const reason = (err as Error).message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
      throw new Error(
        files.cert === undefined
          ? `${flag('caCert')} is not a usable PEM CA certificate (${reason})`
          : `${flag('caCert')}, ${flag('clientCert')} and ${flag('clientKey')} are not usable ` +
              `together: PEM files, and a key that matches the certificate (${reason})`,
      );
    }
  }
  return files;
}
