import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { Rpc } from '../helpers/rpc.js';
import { type ServerCli, startServerCli } from '../helpers/server-cli.js';

const FIRST_START =
  /runkeys: first start\. The root token, shown only this once:\n\n {2}(rkt_\S+)\n/;
const logLines = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; level: number; [k: string]: unknown });

const dataDir = mkdtempSync(join(tmpdir(), 'runkeys-process-'));
const listen = ['--listen', '127.0.0.1:0', '--data-dir', dataDir];
let rootToken = '';

describe('runkeys server, first start without --init-token-file', () => {
  let srv: ServerCli;

  beforeAll(async () => {
    srv = await startServerCli(listen);
  });

  afterAll(async () => {
    srv.child.kill('SIGTERM');
    await srv.exited;
  });

  it('shows the root token once on stderr', () => {
    const match = FIRST_START.exec(srv.stderr());
    expect(match).not.toBeNull();
    rootToken = match![1]!;
    expect(srv.stderr().split(rootToken)).toHaveLength(2);
  });

  it('logs the address it listens on', () => {
    const listening = logLines(srv.stderr()).find((l) => l.msg === 'listening');
    expect(listening).toMatchObject({ address: srv.address, dataDir, tls: false });
    expect(srv.address).toMatch(/^127\.0\.0\.1:\d+$/);
  });
});

describe('runkeys server, second start on the same data dir', () => {
  let srv: ServerCli;

  beforeAll(async () => {
    srv = await startServerCli(listen);
  });

  afterAll(async () => {
    srv.child.kill('SIGKILL');
    await srv.exited;
  });

  it('shows no root token', () => {
    expect(srv.stderr()).not.toContain('first start');
    expect(srv.stderr()).not.toContain('rkt_');
  });

  it('accepts the root token of the first start', async () => {
    const res = await runCli(['collections', 'list'], { env: cliEnv(srv.address, rootToken) });
    expect([res.code, res.stdout, res.stderr]).toEqual([
      0,
      'NAME  DESCRIPTION  MAX OFFLINE  CREATED\n',
      '',
    ]);
  });

  it('stops gracefully on SIGTERM with exit code 0, with a client still connected', async () => {
    const rpc = new Rpc(srv.address);
    await rpc.call(CollectionServiceService.createCollection, { name: 'kept' }, rootToken);
    const sent = Date.now();
    srv.child.kill('SIGTERM');
    const exit = await srv.exited;
    rpc.close();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(5_000);
    const msgs = logLines(srv.stderr()).map((l) => l.msg);
    expect(msgs.slice(-2)).toEqual(['shutting down', 'stopped']);
  });
});

describe('runkeys server --init-token-file', () => {
  it('writes the root token to the file (0600) and not to stderr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runkeys-process-'));
    const file = join(dir, 'root-token');
    const data = join(dir, 'data');
    const srv = await startServerCli([
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      data,
      '--init-token-file',
      file,
    ]);
    srv.child.kill('SIGTERM');
    await srv.exited;
    const token = readFileSync(file, 'utf8');
    expect(token).toMatch(/^rkt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(srv.stderr()).not.toContain(token.trim());
    expect(logLines(srv.stderr()).map((l) => l.msg)).toContain('root token written');
  });

  it('refuses, on a first start, a token file that exists, with exit code 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runkeys-process-'));
    const file = join(dir, 'root-token');
    writeFileSync(file, 'kept\n');
    const args = [
      'server',
      '--listen',
      '127.0.0.1:0',
      '--http-listen',
      'off',
      '--log-level',
      'error',
    ];
    const res = await runCli([...args, '--data-dir', join(dir, 'data'), '--init-token-file', file]);
    expect([res.code, res.stderr]).toEqual([
      2,
      `runkeys: --init-token-file ${file} already exists: the first root token is only written ` +
        'to a new file; move that one away or name another\n',
    ]);
    expect(readFileSync(file, 'utf8')).toBe('kept\n');
    const missing = join(dir, 'no-such-dir', 'root-token');
    const res2 = await runCli([
      ...args,
      '--data-dir',
      join(dir, 'd2'),
      '--init-token-file',
      missing,
    ]);
    expect([res2.code, res2.stderr]).toEqual([
      2,
      `runkeys: cannot write --init-token-file ${missing} (ENOENT): check that its directory ` +
        'exists and is writable\n',
    ]);
  });

  it('refuses a non-loopback --listen without TLS, with exit code 2', async () => {
    const res = await runCli(['server', '--listen', '0.0.0.0:7443', '--data-dir', dataDir]);
    expect([res.code, res.stderr]).toEqual([
      2,
      'runkeys: --listen 0.0.0.0:7443 is not a loopback address: give --tls-cert and --tls-key\n',
    ]);
  });
});
