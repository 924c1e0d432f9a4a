import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AgentEntry,
  type AgentExit,
  makeSandbox,
  type ProbeMode,
  type ProbeReport,
  parseDotenv,
  probe,
  readReport,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { waitFor } from '../helpers/wait.js';

// A real `runkeys server` process, a real agent process and a real child: what a sandbox sees.

const ANTHROPIC_KEY = 'sk-ant-exec-0123456789abcdef';
const OPENAI_KEY = 'sk-openai-exec-0123456789abcdef';
/** What the collection's variables hold; each is checked byte for byte. */
const VALUES: Record<string, string> = {
  PEM_KEY: '-----BEGIN KEY-----\nMIIBexec\n  indented line\n-----END KEY-----',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${...} no reader may expand
  TRICKY: 'say "hi" to $USER and ${PATH} `date` #not-a-comment = x\\n',
  PLAIN_URL: 'https://svc.example/a?b=1#frag',
  PADDED: '  spaces kept, é and 🔑 too  ',
};
/**
 * A single quote together with a double quote: no quoting both readers (and a shell sourcing
 * the file) take literally carries it, so it reaches the environment only.
 */
const ENV_ONLY = { BOTH_QUOTES: `it's "both"` };
/** What the .env holds: the variables plus the anthropic runtime's key. */
const IN_DOTENV = { ...VALUES, ANTHROPIC_API_KEY: ANTHROPIC_KEY };
/** What the child's environment holds. */
const EXPECTED = { ...IN_DOTENV, ...ENV_ONLY };

/**
 * The sandbox's own environment besides the RUNKEYS_* settings runs create printed: an admin
 * token an orchestrator left behind must not reach the child either.
 */
const SANDBOX_OWN = { SANDBOX_OWN: 'kept', RUNKEYS_TOKEN: 'rk_admin_left_in_sandbox' };

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: ANTHROPIC_KEY });
  await cp.setProvider('acme', 'openai', { apiKey: OPENAI_KEY });
  for (const [name, value] of Object.entries({ ...VALUES, ...ENV_ONLY })) {
    await cp.setEnv('acme', name, value, name !== 'PLAIN_URL');
  }
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

interface Outcome {
  sandbox: Sandbox;
  exit: AgentExit;
  report: ProbeReport;
  /** The agent's own stderr: its JSON log and any message. */
  stderr: string;
}

/** Creates an anthropic run and runs the probe under an agent until the agent exits. */
async function runProbe(entry: AgentEntry, mode: ProbeMode, sandbox = makeSandbox()) {
  const run = await cp.createRun('acme', 'anthropic');
  const agent = spawnAgent({
    entry,
    cwd: sandbox.dir,
    env: { ...sandboxVariables(run, server.address), ...SANDBOX_OWN },
    command: probe(sandbox, mode),
  });
  const exit = await agent.exited;
  return { sandbox, exit, report: readReport(sandbox), stderr: agent.stderr() } satisfies Outcome;
}

const pick = (from: Record<string, string>, names: string[]) =>
  Object.fromEntries(names.map((n) => [n, from[n]]));

describe('Exec mode (one-file agent)', () => {
  let out: Outcome;

  beforeAll(async () => {
    out = await runProbe('one-file', 'exit:0');
  });

  it('exits 0 when the child does', () => {
    expect(out.exit).toEqual({ code: 0, signal: null });
  });

  it('gives the child every value exactly in its environment', () => {
    expect(pick(out.report.env, Object.keys(EXPECTED))).toEqual(EXPECTED);
  });

  it('writes every value exactly to the .env, as the dotenv package reads it', () => {
    expect(parseDotenv(out.report.dotenv!).dotenv).toEqual(IN_DOTENV);
  });

  it('writes every value exactly to the .env, as util.parseEnv reads it', () => {
    expect(parseDotenv(out.report.dotenv!).node).toEqual(IN_DOTENV);
  });

  it('leaves a value no .env quoting carries out of the .env and names it', () => {
    expect(out.report.dotenv).not.toContain('BOTH_QUOTES');
    expect(out.stderr).toContain('"variables":["BOTH_QUOTES"]');
    expect(out.stderr).not.toContain(ENV_ONLY.BOTH_QUOTES);
  });

  it("keeps the agent's RUNKEYS_* settings out of the child's environment", () => {
    expect(Object.keys(out.report.env).filter((n) => n.startsWith('RUNKEYS_'))).toEqual([]);
  });

  it("passes the rest of the sandbox's environment through", () => {
    expect(out.report.env.SANDBOX_OWN).toBe('kept');
  });

  it("gives the child the runtime provider's key and no other provider's", () => {
    expect(out.report.env.ANTHROPIC_API_KEY).toBe(ANTHROPIC_KEY);
    expect(out.report.env.OPENAI_API_KEY).toBeUndefined();
    expect(out.report.dotenv).not.toContain(OPENAI_KEY);
  });

  it('writes the .env with mode 0600 in a directory with mode 0700', () => {
    expect(statSync(out.sandbox.envFile).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(out.sandbox.envFile)).mode & 0o777).toBe(0o700);
  });
});

describe('Exec mode (runkeys agent)', () => {
  let out: Outcome;

  beforeAll(async () => {
    out = await runProbe('cli', 'exit:0');
  });

  it('gives the child every value exactly in its environment', () => {
    expect(out.exit).toEqual({ code: 0, signal: null });
    expect(pick(out.report.env, Object.keys(EXPECTED))).toEqual(EXPECTED);
  });

  it('writes every value exactly to the .env, as both readers read it', () => {
    const { dotenv, node } = parseDotenv(out.report.dotenv!);
    expect(dotenv).toEqual(IN_DOTENV);
    expect(node).toEqual(IN_DOTENV);
  });

  it("keeps the agent's RUNKEYS_* settings out of the child's environment", () => {
    expect(Object.keys(out.report.env).filter((n) => n.startsWith('RUNKEYS_'))).toEqual([]);
  });
});

describe('Exit code', () => {
  it("passes the child's exit code through", async () => {
    const { exit } = await runProbe('one-file', 'exit:7');
    expect(exit).toEqual({ code: 7, signal: null });
  });

  it('exits 143 when the child is killed by SIGTERM', async () => {
    const { exit } = await runProbe('one-file', 'sigterm');
    expect(exit).toEqual({ code: 143, signal: null });
  });

  it('forwards a SIGTERM it receives to the child, and exits 143', async () => {
    const run = await cp.createRun('acme', 'anthropic');
    const sandbox = makeSandbox();
    const agent = spawnAgent({
      cwd: sandbox.dir,
      env: sandboxVariables(run, server.address),
      command: probe(sandbox, 'wait'),
    });
    await waitFor(() => agent.stdout().includes('tick 1'), 10_000, 'the child to start');
    agent.signal('SIGTERM');
    expect(await agent.exited).toEqual({ code: 143, signal: null });
  });
});

describe('The .env file', () => {
  it('tightens an env directory and .env the sandbox made too open', async () => {
    const sandbox = makeSandbox();
    mkdirSync(dirname(sandbox.envFile), { mode: 0o755 });
    chmodSync(dirname(sandbox.envFile), 0o755);
    writeFileSync(sandbox.envFile, 'OLD=1\n', { mode: 0o644 });
    await runProbe('one-file', 'exit:0', sandbox);
    expect(statSync(sandbox.envFile).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(sandbox.envFile)).mode & 0o777).toBe(0o700);
  });
});
