import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { Rpc } from '../helpers/rpc.js';
import { createCollection, type IssuedToken, issueToken } from '../helpers/seed.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { snapshotStore } from '../helpers/store.js';

let srv: TestServer;
let rpc: Rpc;
let viewer: IssuedToken;
let stoppedAddress: string;

const as = (token: string) => (args: string[], stdin?: string | Buffer) =>
  runCli(args, { env: cliEnv(srv.address, token), stdin });
const root = (args: string[], stdin?: string | Buffer) => as(srv.rootToken)(args, stdin);
const outcome = (r: CliResult) => ({ code: r.code, stderr: r.stderr });

beforeAll(async () => {
  srv = await startTestServer();
  rpc = new Rpc(srv.address);
  await createCollection(rpc, srv.rootToken, 'shop');
  viewer = await issueToken(rpc, srv.rootToken, 'shop', 'viewer');
  // The first call of a token stamps last_used_at; make it before any snapshot.
  await rpc.call(CollectionServiceService.listCollections, {}, viewer.secret);
  const stopped = await startTestServer();
  stoppedAddress = stopped.address;
  await stopped.close();
});

afterAll(async () => {
  rpc.close();
  await srv.close();
});

describe('runkeys exit codes', () => {
  it('exits 0 and prints usage on stdout for --help', async () => {
    const res = await runCli(['--help']);
    expect([res.code, res.stderr]).toEqual([0, '']);
    expect(res.stdout).toMatch(/^Usage: runkeys \[options\] \[command\]/);
  });

  it('exits 2 when a required flag is missing', async () => {
    const res = await root(['env', 'list']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: required option '--collection <name>' not specified\n/);
  });

  it('exits 2 without RUNKEYS_TOKEN, before calling the server', async () => {
    const res = await runCli(['collections', 'list'], { env: { RUNKEYS_ADDR: srv.address } });
    expect(outcome(res)).toEqual({
      code: 2,
      stderr: 'runkeys: RUNKEYS_TOKEN is not set: export the admin token first\n',
    });
  });

  it('exits 15 for NOT_FOUND and shows "runkeys: CODE: message"', async () => {
    const res = await root(['env', 'get', 'NOPE', '--collection', 'shop']);
    expect(outcome(res)).toEqual({
      code: 15,
      stderr: 'runkeys: NOT_FOUND: variable "NOPE" not found in collection "shop"\n',
    });
  });

  it('exits 13 for INVALID_ARGUMENT', async () => {
    const res = await root(['env', 'set', 'LD_PRELOAD', '--collection', 'shop'], '/tmp/x.so');
    expect(outcome(res)).toEqual({
      code: 13,
      stderr:
        'runkeys: INVALID_ARGUMENT: "name" must not name a variable that changes how the ' +
        'sandbox loads code or finds programs unless "allow_override" is set ' +
        '(--allow-override); got LD_PRELOAD\n',
    });
  });

  it('exits 16 for ALREADY_EXISTS', async () => {
    const res = await root(['collections', 'create', 'shop']);
    expect(outcome(res)).toEqual({
      code: 16,
      stderr: 'runkeys: ALREADY_EXISTS: collection "shop" already exists\n',
    });
  });

  it('exits 17 for PERMISSION_DENIED', async () => {
    const res = await as(viewer.secret)(['env', 'set', 'X', '--collection', 'shop'], 'v');
    expect(outcome(res)).toEqual({
      code: 17,
      stderr: 'runkeys: PERMISSION_DENIED: a viewer token cannot change collection "shop"\n',
    });
  });

  it('exits 26 for UNAUTHENTICATED', async () => {
    const res = await as(`rkt_000000000000_${'A'.repeat(43)}`)(['collections', 'list']);
    expect(outcome(res)).toEqual({
      code: 26,
      stderr:
        'runkeys: UNAUTHENTICATED: the bearer token is not valid (unknown, revoked or expired)\n',
    });
  });

  it('exits 24 for UNAVAILABLE when the server is stopped', async () => {
    const res = await runCli(['collections', 'list'], {
      env: cliEnv(stoppedAddress, srv.rootToken),
    });
    expect(res.code).toBe(24);
    expect(res.stderr).toMatch(/^runkeys: UNAVAILABLE: .*ECONNREFUSED/);
    expect(res.stderr).toContain('\nrunkeys: is the control plane running at that address?');
    expect(res.stderr).not.toContain('Resolution note');
  });
});

describe('values never taken from the command line', () => {
  let before: ReturnType<typeof snapshotStore>;

  beforeAll(() => {
    before = snapshotStore(srv.dataDir);
  });

  it('refuses a value given as an argument to env set, with exit code 2', async () => {
    const res = await root(['env', 'set', 'API_TOKEN', 'tok-on-argv', '--collection', 'shop']);
    expect(outcome(res)).toEqual({
      code: 2,
      stderr:
        'runkeys: a value is never taken as an argument (it would leak into shell history and ' +
        'ps); pipe it on stdin or use --from-file\n',
    });
  });

  it('refuses a key given as an argument to providers set, with exit code 2', async () => {
    const res = await root(['providers', 'set', 'openai', 'sk-on-argv', '--collection', 'shop']);
    expect(outcome(res)).toEqual({
      code: 2,
      stderr:
        'runkeys: a key is never taken as an argument (it would leak into shell history and ' +
        'ps); pipe it on stdin or use --from-file\n',
    });
  });

  it('refuses an empty stdin, with exit code 2', async () => {
    const res = await root(['env', 'set', 'API_TOKEN', '--collection', 'shop'], '');
    expect(outcome(res)).toEqual({
      code: 2,
      stderr: 'runkeys: no value on stdin: the value must not be empty\n',
    });
  });

  it('refuses a value that is not UTF-8 rather than store it changed, with exit code 2', async () => {
    const before = snapshotStore(srv.dataDir);
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('CANARY-utf8-0123')]);
    const res = await root(['env', 'set', 'BINARY', '--collection', 'shop'], bytes);
    expect(outcome(res)).toEqual({
      code: 2,
      stderr:
        'runkeys: the value on stdin is not valid UTF-8: runkeys keeps text; ' +
        'store binary data base64-encoded\n',
    });
    expect(snapshotStore(srv.dataDir)).toEqual(before);
  });

  it('refuses a stdin holding only the newline echo adds, with exit code 2', async () => {
    const res = await root(['providers', 'set', 'openai', '--collection', 'shop'], '\n');
    expect(outcome(res)).toEqual({
      code: 2,
      stderr: 'runkeys: no key on stdin: the key must not be empty\n',
    });
  });

  it('refuses a --from-file that cannot be read, with exit code 2', async () => {
    const res = await root([
      'env',
      'set',
      'API_TOKEN',
      '--collection',
      'shop',
      '--from-file',
      '/nonexistent/value',
    ]);
    expect(outcome(res)).toEqual({
      code: 2,
      stderr: 'runkeys: cannot read --from-file /nonexistent/value\n',
    });
  });

  it('stored nothing and wrote no audit event for any of them', () => {
    expect(snapshotStore(srv.dataDir)).toEqual(before);
  });
});

describe('tokens create', () => {
  it('tokens create: a scoped role without --collection, or root with one, is exit 2', async () => {
    const before = snapshotStore(srv.dataDir);
    expect(outcome(await root(['tokens', 'create', '--role', 'runner']))).toEqual({
      code: 2,
      stderr:
        'runkeys: --role runner needs --collection: admin, runner and viewer tokens are scoped ' +
        'to one collection\n',
    });
    expect(
      outcome(await root(['tokens', 'create', '--role', 'root', '--collection', 'shop'])),
    ).toEqual({
      code: 2,
      stderr: 'runkeys: --role root takes no --collection: a root token spans them all\n',
    });
    expect(snapshotStore(srv.dataDir)).toEqual(before);
    const made = await root(['tokens', 'create', '--role', 'runner', '--collection', 'shop']);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/^rkt_\S+\n$/);
  });
});
