import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProviderCredential } from '../../proto/gen/runkeys/v1/provider_keys.js';
import {
  makeSandbox,
  type ProbeReport,
  parseDotenv,
  probe,
  readReport,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';

// The names each provider's credential lands under in the child's environment and the .env
// (server/layers/provider-env.ts), checked through a real server, agent and child. The table is
// written out here rather than imported, so a wrong mapping fails.

interface Case {
  title: string;
  provider: string;
  credential: Partial<ProviderCredential>;
  expected: Record<string, string>;
}

const CASES: Case[] = [
  {
    title: 'anthropic',
    provider: 'anthropic',
    credential: { apiKey: 'sk-ant-map-0123456789', baseUrl: 'https://anthropic.example' },
    expected: {
      ANTHROPIC_API_KEY: 'sk-ant-map-0123456789',
      ANTHROPIC_BASE_URL: 'https://anthropic.example',
    },
  },
  {
    title: 'openai',
    provider: 'openai',
    credential: { apiKey: 'sk-openai-map-0123456789', baseUrl: 'https://openai.example/v1' },
    expected: {
      OPENAI_API_KEY: 'sk-openai-map-0123456789',
      OPENAI_BASE_URL: 'https://openai.example/v1',
    },
  },
  {
    title: 'openrouter',
    provider: 'openrouter',
    credential: { apiKey: 'sk-or-map-0123456789', baseUrl: 'https://openrouter.example/api' },
    expected: {
      OPENROUTER_API_KEY: 'sk-or-map-0123456789',
      OPENROUTER_BASE_URL: 'https://openrouter.example/api',
    },
  },
  {
    title: 'gemini',
    provider: 'gemini',
    credential: { apiKey: 'AIza-gemini-map-0123456789', baseUrl: 'https://gemini.example' },
    expected: {
      GEMINI_API_KEY: 'AIza-gemini-map-0123456789',
      GOOGLE_GEMINI_BASE_URL: 'https://gemini.example',
    },
  },
  {
    title: 'bedrock with an access key pair and session token',
    provider: 'bedrock',
    credential: {
      region: 'eu-west-1',
      accessKeyId: 'AKIAMAP0123456789',
      secretAccessKey: 'bedrock-secret-map-0123456789',
      sessionToken: 'bedrock-session-map-0123456789',
    },
    expected: {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIAMAP0123456789',
      AWS_SECRET_ACCESS_KEY: 'bedrock-secret-map-0123456789',
      AWS_SESSION_TOKEN: 'bedrock-session-map-0123456789',
    },
  },
  {
    title: 'bedrock with a bearer token',
    provider: 'bedrock',
    credential: { region: 'us-east-1', bearerToken: 'bedrock-bearer-map-0123456789' },
    expected: {
      AWS_REGION: 'us-east-1',
      AWS_BEARER_TOKEN_BEDROCK: 'bedrock-bearer-map-0123456789',
    },
  },
  {
    title: 'vllm with a key',
    provider: 'vllm',
    credential: { baseUrl: 'http://vllm.internal:8000/v1', apiKey: 'vllm-key-map-0123456789' },
    expected: {
      OPENAI_BASE_URL: 'http://vllm.internal:8000/v1',
      OPENAI_API_KEY: 'vllm-key-map-0123456789',
    },
  },
  {
    title: 'vllm without a key',
    provider: 'vllm',
    credential: { baseUrl: 'http://vllm.internal:8000/v1' },
    expected: { OPENAI_BASE_URL: 'http://vllm.internal:8000/v1' },
  },
];

/** Inherited by every sandbox: Google's SDKs would prefer it over GEMINI_API_KEY. */
const INHERITED = { GOOGLE_API_KEY: 'AIza-sandbox-own-0123456789' };

let server: ServerProcess;
let cp: ControlPlane;

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
});

afterAll(async () => {
  stopAgents();
  cp.close();
  await server.kill();
});

let collections = 0;

/** A collection holding only this provider's key, and one run of it under a real agent. */
async function runOf(c: Case): Promise<ProbeReport> {
  const collection = `map-${++collections}`;
  await cp.createCollection(collection);
  await cp.setProvider(collection, c.provider, c.credential);
  const run = await cp.createRun(collection, c.provider);
  const sandbox = makeSandbox();
  const agent = spawnAgent({
    cwd: sandbox.dir,
    env: { ...sandboxVariables(run, server.address), ...INHERITED },
    command: probe(sandbox, 'exit:0'),
  });
  expect(await agent.exited).toEqual({ code: 0, signal: null });
  return readReport(sandbox);
}

const PATH = process.env.PATH ?? '';

describe('Provider credentials in the run', () => {
  for (const c of CASES) {
    it(`maps ${c.title} to ${Object.keys(c.expected).join(', ')}`, async () => {
      const report = await runOf(c);
      const inherited = c.provider === 'gemini' ? {} : INHERITED;
      expect(report.env).toEqual({ PATH, ...inherited, ...c.expected });
      expect(parseDotenv(report.dotenv!).dotenv).toEqual(c.expected);
      expect(parseDotenv(report.dotenv!).node).toEqual(c.expected);
    });
  }

  it("removes the sandbox's GOOGLE_API_KEY from a gemini run's environment", async () => {
    const report = await runOf(CASES.find((c) => c.provider === 'gemini')!);
    expect(report.env.GOOGLE_API_KEY).toBeUndefined();
    expect(report.env.GEMINI_API_KEY).toBe('AIza-gemini-map-0123456789');
  });

  it("keeps the sandbox's GOOGLE_API_KEY in a run of another provider", async () => {
    const report = await runOf(CASES[0]!);
    expect(report.env.GOOGLE_API_KEY).toBe(INHERITED.GOOGLE_API_KEY);
  });
});
