// The main job, end to end on the embedded default (SQLite): a control plane, every layer set,
// a run, and `runkeys agent -- <program>` showing the program got exactly what was set; then a
// live update and the end of the run. Everything lives in a temporary directory.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

const CLI = join(import.meta.dirname, '..', 'bin', 'runkeys.js');
const work = mkdtempSync(join(tmpdir(), 'runkeys-demo-'));
const sandbox = join(work, 'sandbox');
const say = (text) => process.stdout.write(`${text}\n`);
const step = (text) => say(`\n== ${text}`);

// Demo values, invented; a real admin pipes real ones the same way.
const VALUES = {
  ANTHROPIC_API_KEY: 'sk-ant-demo-7Qx2ZpL9vW4mN8rT1yK6',
  GITHUB_TOKEN: 'ghp_demoR4nd0mT0k3nV4lu3xYz0123456789',
  DATABASE_URL: 'postgres://app:s3cr3t-Pa55@db.internal:5432/app',
  TLS_KEY: '-----BEGIN TEST KEY-----\nZGVtby1rZXktbGluZS0x\n-----END TEST KEY-----',
  SERVICE_URL: 'https://tools.internal.example',
};

function cli(args, { stdin = '', env = {}, cwd = work } = {}) {
  const res = spawnSync(process.execPath, [CLI, ...args], {
    input: stdin,
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    process.stderr.write(res.stderr);
    throw new Error(`runkeys ${args[0]} ${args[1] ?? ''} exited ${res.status}`);
  }
  return res.stdout;
}

function startServer() {
  const dataDir = join(work, 'data');
  const tokenFile = join(work, 'root-token');
  const server = spawn(
    process.execPath,
    [
      CLI,
      'server',
      '--listen',
      '127.0.0.1:0',
      '--data-dir',
      dataDir,
      '--init-token-file',
      tokenFile,
      '--http-listen',
      '127.0.0.1:0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUNKEYS_LOG_FORMAT: 'json' } },
  );
  return new Promise((resolve, reject) => {
    let buffered = '';
    server.stderr.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const line = buffered.split('\n').find((l) => l.includes('"msg":"listening"'));
      if (line !== undefined) {
        const { address } = JSON.parse(line);
        resolve({ server, address, token: readFileSync(tokenFile, 'utf8').trim() });
      }
    });
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${buffered}`)));
  });
}

async function waitFor(what, check, timeoutMs = 5000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const value = check();
    if (value) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const { server, address, token } = await startServer();
const env = { RUNKEYS_ADDR: address, RUNKEYS_TOKEN: token };
const admin = (args, stdin) => cli(args, { stdin, env });
try {
  step(`control plane listening on ${address}, data in ${join(work, 'data')}`);

  step('an admin sets every layer (values on stdin, never as arguments)');
  admin(['collections', 'create', 'acme', '--description', 'demo collection']);
  admin(['providers', 'set', 'anthropic', '--collection', 'acme'], VALUES.ANTHROPIC_API_KEY);
  admin(
    ['providers', 'set', 'openai', '--collection', 'acme'],
    'sk-openai-demo-not-for-this-run-000',
  );
  for (const name of ['GITHUB_TOKEN', 'DATABASE_URL', 'TLS_KEY']) {
    admin(['env', 'set', name, '--collection', 'acme'], VALUES[name]);
  }
  admin(['env', 'set', 'SERVICE_URL', '--collection', 'acme', '--plain'], VALUES.SERVICE_URL);
  say(admin(['env', 'list', '--collection', 'acme']).trimEnd());
  say(admin(['providers', 'list', '--collection', 'acme']).trimEnd());

  step('an orchestrator creates a run; the sandbox gets its four RUNKEYS_* settings');
  const runEnv = parseEnv(
    admin(['runs', 'create', '--collection', 'acme', '--provider', 'anthropic', '--env']),
  );
  say(`run ${runEnv.RUNKEYS_RUN_ID}, server key ${runEnv.RUNKEYS_SERVER_KEY}`);

  step('in the sandbox: runkeys agent -- node (a program that reports what it received)');
  // The program writes what it received to a file, and prints a token the way a careless tool
  // would: the agent scrubs every sensitive value from what the program prints.
  const program =
    'const fs=require("fs");' +
    'const names=["ANTHROPIC_API_KEY","OPENAI_API_KEY","GITHUB_TOKEN","DATABASE_URL","TLS_KEY","SERVICE_URL","RUNKEYS_BOOTSTRAP_SECRET"];' +
    'const dotenv=require("util").parseEnv(fs.readFileSync("env/.env","utf8"));' +
    'fs.writeFileSync("report.json", JSON.stringify({env:Object.fromEntries(names.map(n=>[n,process.env[n]??null])),dotenv}));' +
    'console.log("debug: using token " + process.env.GITHUB_TOKEN + " for " + process.env.SERVICE_URL);' +
    'console.log(JSON.stringify({db: process.env.DATABASE_URL}));';
  mkdirSync(sandbox, { recursive: true });
  const child = spawnSync(process.execPath, [CLI, 'agent', '--', process.execPath, '-e', program], {
    cwd: sandbox,
    env: { PATH: process.env.PATH, ...runEnv },
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`agent exited ${child.status}: ${child.stderr}`);
  const got = JSON.parse(readFileSync(join(sandbox, 'report.json'), 'utf8'));
  let ok = true;
  for (const [name, value] of Object.entries(VALUES)) {
    const inEnv = got.env[name] === value;
    const inFile = got.dotenv[name] === value;
    ok &&= inEnv && inFile;
    say(
      `${inEnv && inFile ? 'ok ' : 'BAD'} ${name.padEnd(18)} environment: ${inEnv ? 'exact' : 'wrong'}, .env: ${inFile ? 'exact' : 'wrong'}`,
    );
  }
  const noOther = got.env.OPENAI_API_KEY === null && got.dotenv.OPENAI_API_KEY === undefined;
  const noSecret = got.env.RUNKEYS_BOOTSTRAP_SECRET === null;
  say(`${noOther ? 'ok ' : 'BAD'} OPENAI_API_KEY     absent: the run's runtime is anthropic`);
  say(
    `${noSecret ? 'ok ' : 'BAD'} RUNKEYS_*          absent: the agent's own settings never reach the program`,
  );
  ok &&= noOther && noSecret;
  say('what the program printed, as the agent passed it on:');
  for (const line of child.stdout.trimEnd().split('\n')) say(`  | ${line}`);
  const printed = child.stdout + child.stderr;
  const leaked = Object.entries(VALUES).filter(
    ([n, v]) => n !== 'SERVICE_URL' && printed.includes(v),
  );
  say(
    `${leaked.length === 0 ? 'ok ' : 'BAD'} no sensitive value in the program's output or the agent's log`,
  );
  ok &&= leaked.length === 0;

  step('a second run with the agent as a sidecar: live update, then the run ends');
  const run2 = parseEnv(
    admin(['runs', 'create', '--collection', 'acme', '--provider', 'anthropic', '--env']),
  );
  const sidecarDir = join(work, 'sidecar');
  mkdirSync(sidecarDir, { recursive: true });
  const sidecar = spawn(process.execPath, [CLI, 'agent'], {
    cwd: sidecarDir,
    env: { PATH: process.env.PATH, ...run2 },
    stdio: 'ignore',
  });
  const envFile = join(sidecarDir, 'env', '.env');
  await waitFor('.env', () => existsSync(envFile));
  const rotated = 'ghp_demoRotatedValue000000000000000000';
  const started = Date.now();
  admin(['env', 'set', 'GITHUB_TOKEN', '--collection', 'acme'], rotated);
  await waitFor(
    'the update',
    () => parseEnv(readFileSync(envFile, 'utf8')).GITHUB_TOKEN === rotated,
  );
  say(
    `ok  GITHUB_TOKEN changed by the admin reached the sidecar's .env in ${Date.now() - started} ms`,
  );
  admin(['runs', 'end', run2.RUNKEYS_RUN_ID, '--collection', 'acme']);
  await waitFor('revocation', () => !existsSync(envFile));
  const code = await new Promise((r) => sidecar.on('exit', r));
  say(`ok  run ended: the sidecar removed the .env and exited ${code}`);

  step('the audit log (names and fingerprints, never values)');
  say(admin(['audit', '--collection', 'acme', '--limit', '12']).trimEnd());
  step(ok ? 'demo passed' : 'demo FAILED');
  process.exitCode = ok ? 0 : 1;
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  rmSync(work, { recursive: true, force: true });
}
