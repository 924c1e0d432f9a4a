import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, cliEnv, runCli } from '../helpers/cli.js';
import { EDGE_STRINGS, echoes, fuzzParameters, fuzzString } from '../helpers/fuzz.js';
import { seedWorld, WORLD_COLLECTION } from '../helpers/fuzz-world.js';
import { Rpc } from '../helpers/rpc.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * Random argument vectors and stdin for the commands that send user input to the control
 * plane, run through the built `runkeys` binary (npm run build) as a user would. Every run
 * must exit 0, 2 (usage) or 10 + a gRPC code, but never 10 + INTERNAL or UNKNOWN, never 1 (an
 * unexpected failure), and never print a stack trace or the secret it was given on stdin.
 * Each run spawns a process: the budget is about 20 runs in all.
 */

const RUNS_PER_COMMAND = 4;
const CLI_TIMEOUT_MS = 20_000;
const EXIT_INTERNAL = 10 + 13;
const EXIT_UNKNOWN = 10 + 2;
const STACK_LINE = /^\s+at .+(:\d+:\d+\)?|\(native\)|<anonymous>)$/m;

let srv: TestServer;
let rpc: Rpc;
let env: Record<string, string>;
/** Exit codes per command, for FUZZ_VERBOSE. */
const tally = new Map<string, number[]>();

beforeAll(async () => {
  srv = await startTestServer({ refresh: { sweepMs: 24 * 3600 * 1000 } });
  rpc = new Rpc(srv.address);
  await seedWorld(rpc, srv.rootToken);
  env = cliEnv(srv.address, srv.rootToken);
});

afterAll(async () => {
  if (process.env.FUZZ_VERBOSE !== undefined) {
    for (const [name, codes] of tally) console.log(`runkeys ${name}: exit ${codes.join(' ')}`);
  }
  rpc?.close();
  await srv?.close();
});

/** An argument: argv cannot carry NUL, and a very long one only slows the run down. */
const arg = fc.oneof(
  { weight: 4, arbitrary: fuzzString().map((s) => s.replaceAll('\0', '').slice(0, 4096)) },
  { weight: 1, arbitrary: fc.constantFrom('-', '--', '-x', '--json', '--collection', '=', 'a=b') },
);
const collection = fc.oneof(
  { weight: 3, arbitrary: fc.constant(WORLD_COLLECTION) },
  { weight: 1, arbitrary: arg },
);
const maybe = (a: fc.Arbitrary<string[]>) => fc.oneof(fc.constant<string[]>([]), a);
const flag = (name: string) => fc.constantFrom<string[]>([], [name]);
const option = (name: string, value: fc.Arbitrary<string>) => maybe(value.map((v) => [name, v]));
const repeated = (name: string, value: fc.Arbitrary<string>) =>
  fc.array(value, { maxLength: 3 }).map((vs) => vs.flatMap((v) => [name, v]));
const oneOf = (...values: string[]) =>
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: arg });
const concat = (...parts: fc.Arbitrary<string[]>[]) => fc.tuple(...parts).map((ps) => ps.flat());

/** A JSON value of any shape; at the top level mostly an object with some known fields. */
const jsonScalar = fc.oneof(
  fuzzString(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(...EDGE_STRINGS),
);

/**
 * expires_in values. FOUND BY FUZZING, now fixed (see the regression cases below): a number that is not a safe
 * integer fails to encode and exits 23 (INTERNAL), so the random runs keep to safe integers.
 */
const expiresIn = fc.oneof(
  fc.integer({ min: -1_000_000, max: 400_000_000 }),
  fc.constantFrom(0, 3600, -1, Number.MAX_SAFE_INTEGER),
  fuzzString(),
  fc.constant(null),
  fc.boolean(),
);

interface Invocation {
  args: string[];
  stdin: string;
  /** A secret given on stdin, which nothing the CLI prints may repeat. */
  secret?: string;
}

async function expectClean(inv: Invocation): Promise<CliResult> {
  const r = await runCli(inv.args, { env, stdin: inv.stdin, timeoutMs: CLI_TIMEOUT_MS });
  const name = inv.args.slice(0, 2).join(' ');
  tally.set(name, [...(tally.get(name) ?? []), r.code]);
  const said = `runkeys ${JSON.stringify(inv.args)} exited ${r.code}:\n${r.stderr}`;
  expect(r.code, `${said}\n(killed after ${CLI_TIMEOUT_MS} ms?)`).not.toBe(-1);
  expect(r.code, said).not.toBe(1);
  expect([EXIT_INTERNAL, EXIT_UNKNOWN], said).not.toContain(r.code);
  expect(r.code === 0 || r.code === 2 || (r.code > 10 && r.code <= 26), said).toBe(true);
  expect(r.stderr, `${said}\nprints a stack trace`).not.toMatch(STACK_LINE);
  if (r.code !== 0) expect(r.stderr.trim(), `${said}\nsays nothing`).not.toBe('');
  if (inv.secret !== undefined && echoes(r.stderr, inv.secret)) {
    expect.fail(`${said}\nrepeats the secret given on stdin`);
  }
  return r;
}

const COMMANDS: [string, fc.Arbitrary<Invocation>][] = [
  [
    'env set',
    fc
      .record({
        args: concat(
          fc.tuple(oneOf('FUZZ_VAR', 'PATH', 'SECRET_ACME')).map(([n]) => ['env', 'set', n]),
          collection.map((c) => ['--collection', c]),
          flag('--plain'),
          flag('--allow-override'),
          flag('--keep-trailing-newline'),
          flag('--json'),
          maybe(arg.map((a) => [a])),
        ),
        value: fuzzString(),
      })
      .map((r) => ({ args: r.args, stdin: r.value, secret: r.value })),
  ],
  [
    'providers set',
    fc
      .record({
        args: concat(
          oneOf('anthropic', 'openai', 'bedrock', 'vllm').map((p) => ['providers', 'set', p]),
          collection.map((c) => ['--collection', c]),
          option('--base-url', oneOf('https://api.example/v1', 'http://127.0.0.1:1')),
          option('--region', oneOf('us-east-1', 'eu-west-3')),
          option('--access-key-id', arg),
          flag('--no-key'),
          flag('--credential-json'),
        ),
        stdin: fc.oneof(
          fuzzString(),
          fc
            .dictionary(
              oneOf('api_key', 'base_url', 'region', 'bearer_token', 'secret_access_key'),
              jsonScalar,
            )
            .map((o) => JSON.stringify(o)),
        ),
      })
      .map((r) => ({ ...r, secret: r.stdin })),
  ],
  [
    'runs create',
    fc
      .record({
        args: concat(
          fc.constant(['runs', 'create']),
          collection.map((c) => ['--collection', c]),
          oneOf('anthropic', 'bedrock', 'gemini').map((p) => ['--provider', p]),
          option('--account', oneOf('octocat', 'nobody')),
          // FOUND BY FUZZING, now fixed (see below): a --ttl past 2^53 exits 23; the random runs stay below.
          option('--ttl', oneOf('0', '60', '-1', '1.5', '86401', 'abc', '', '9007199254740991')),
          repeated('--label', oneOf('team=fuzz', 'k=', '=v', 'BAD KEY=x', 'a=\u0001')),
          flag('--env'),
        ),
      })
      .map((r) => ({ args: r.args, stdin: '' })),
  ],
  [
    'oauth-clients create',
    fc
      .record({
        args: concat(
          oneOf('fuzz-client', 'github').map((n) => ['oauth-clients', 'create', n]),
          collection.map((c) => ['--collection', c]),
          oneOf('runkeys-fuzz', 'has space').map((id) => ['--client-id', id]),
          option('--token-endpoint', oneOf('https://auth.example/t', 'http://x.example/t')),
          option('--issuer', oneOf('https://issuer.example', 'ftp://x')),
          repeated('--scope', oneOf('repo', 'read:org', 'a"b')),
          repeated('--inject-env', oneOf('GH_TOKEN', 'GH_TOKEN=refresh_token', 'PATH', '=')),
          option('--auth-method', oneOf('none', 'client_secret_basic', 'private_key_jwt')),
          option('--provider', oneOf('anthropic', 'nope')),
          flag('--client-secret-stdin'),
        ),
        secret: fuzzString(),
      })
      .map((r) => ({ args: r.args, stdin: r.secret, secret: r.secret })),
  ],
  [
    'accounts import',
    fc
      .record({
        args: concat(
          oneOf('fuzz-account', 'octocat').map((n) => ['accounts', 'import', n]),
          collection.map((c) => ['--collection', c]),
          oneOf('github', 'nobody').map((c) => ['--client', c]),
        ),
        stdin: fc.oneof(
          { weight: 1, arbitrary: fuzzString() },
          { weight: 1, arbitrary: fc.json() },
          {
            weight: 3,
            arbitrary: fc
              .record(
                {
                  access_token: jsonScalar,
                  refresh_token: jsonScalar,
                  expires_in: expiresIn,
                  scope: jsonScalar,
                  token_type: jsonScalar,
                  extra_field: jsonScalar,
                },
                { requiredKeys: [] },
              )
              .map((o) => JSON.stringify(o)),
          },
        ),
      })
      .map((r) => {
        let secret: string | undefined;
        try {
          const parsed = JSON.parse(r.stdin) as { access_token?: unknown };
          if (typeof parsed?.access_token === 'string') secret = parsed.access_token;
        } catch {
          secret = r.stdin;
        }
        return { ...r, secret };
      }),
  ],
];

describe.concurrent('fuzzed CLI input', () => {
  it.each(COMMANDS)(
    'runkeys %s exits with a documented code, without a stack trace',
    async (_name, invocation) => {
      await fc.assert(
        fc.asyncProperty(invocation, async (inv) => {
          await expectClean(inv);
        }),
        fuzzParameters(RUNS_PER_COMMAND),
      );
    },
    60_000,
  );
});

describe('known bugs (reported; flip each it to it once fixed)', () => {
  // cli/commands/accounts.ts passes expires_in on as it is: 1.5 and 1e30 fail to encode on the
  // client (INTERNAL: Request message serialization failure), 2^60 fails to decode on the
  // server (INTERNAL: Error deserializing request). Both exit 23 where 2 (usage) is due.
  it.each(['1.5', '1152921504606846976'])(
    'accounts import with expires_in %s exits 2, not 23',
    async (n) => {
      await expectClean({
        args: [
          'accounts',
          'import',
          'bug-expiry',
          '--collection',
          WORLD_COLLECTION,
          '--client',
          'github',
        ],
        stdin: `{"access_token":"gho_fuzz","expires_in":${n}}`,
      });
    },
  );

  // cli/commands/runs.ts checks --ttl with Number.isInteger, which 1e20 passes; it then fails
  // to encode as an int64 (and 2^53 + 1 fails to decode on the server).
  it.each(['1e20'])('runs create --ttl %s exits 2, not 23', async (ttl) => {
    await expectClean({
      args: [
        'runs',
        'create',
        '--collection',
        WORLD_COLLECTION,
        '--provider',
        'anthropic',
        '--ttl',
        ttl,
      ],
      stdin: '',
    });
  });
});
