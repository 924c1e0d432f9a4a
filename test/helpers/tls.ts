/**
 * Test certificates: a CA, a server certificate for 127.0.0.1 and localhost, and a client
 * certificate it signed; and a second CA with a client certificate of its own, which a
 * control plane trusting only the first must refuse. ECDSA P-256, made with @peculiar/x509
 * over Node's WebCrypto and written as PEM files.
 */
import { KeyObject, webcrypto } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata API first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY = 24 * 3600 * 1000;

interface Issued {
  cert: x509.X509Certificate;
  keys: webcrypto.CryptoKeyPair;
}

const newKeys = () =>
  webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

async function makeCa(name: string): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${name}`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
    ],
  });
  return { cert, keys };
}

async function issue(
  ca: Issued,
  name: string,
  usage: x509.ExtendedKeyUsage,
  altNames: x509.JsonGeneralNames = [],
): Promise<Issued> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    extensions: [
      new x509.BasicConstraintsExtension(false),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames)] : []),
    ],
  });
  return { cert, keys };
}

/** Paths of one certificate and its key. */
export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** The CA that signed `server` and `client`. */
  ca: string;
  server: CertFiles;
  client: CertFiles;
  /** Another CA, and a client certificate it signed. */
  otherCa: string;
  otherClient: CertFiles;
}

function write(dir: string, name: string, issued: Issued): CertFiles {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  writeFileSync(cert, issued.cert.toString('pem'));
  const pem = KeyObject.from(issued.keys.privateKey).export({ type: 'pkcs8', format: 'pem' });
  writeFileSync(key, pem, { mode: 0o600 });
  return { cert, key };
}

export async function makePki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'runkeys-pki-'));
  const ca = await makeCa('runkeys test CA');
  const other = await makeCa('another CA');
  const server = await issue(ca, 'runkeys control plane', x509.ExtendedKeyUsage.serverAuth, [
    { type: 'ip', value: '127.0.0.1' },
    { type: 'dns', value: 'localhost' },
  ]);
  const client = await issue(ca, 'sandbox agent', x509.ExtendedKeyUsage.clientAuth);
  const otherClient = await issue(other, 'sandbox agent', x509.ExtendedKeyUsage.clientAuth);
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert.toString('pem'));
  const otherCaFile = join(dir, 'other-ca.pem');
  writeFileSync(otherCaFile, other.cert.toString('pem'));
  return {
    dir,
    ca: caFile,
    server: write(dir, 'server', server),
    client: write(dir, 'client', client),
    otherCa: otherCaFile,
    otherClient: write(dir, 'other-client', otherClient),
  };
}
