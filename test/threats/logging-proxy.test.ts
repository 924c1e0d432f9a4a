import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  makeSandbox,
  parseDotenv,
  type Sandbox,
  spawnAgent,
  stopAgents,
} from '../helpers/agent.js';
import { canary, leaksIn } from '../helpers/canary.js';
import { type ControlPlane, controlPlane, sandboxVariables } from '../helpers/runs.js';
import { type ServerProcess, spawnServer } from '../helpers/server-process.js';
import { readIfExists, waitFor } from '../helpers/wait.js';

// Threat: a proxy or load balancer between the agent and the control plane logs every byte. A
// real TCP proxy records both directions of a real agent's attach, its bundle and a live update;
// no value, in any encoding, and no part of the bootstrap secret is in what it recorded.

class RecordingProxy {
  readonly bytes: Buffer[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  address = '';

  constructor(private readonly target: string) {}

  async open(): Promise<void> {
    const [host, port] = [
      this.target.slice(0, this.target.lastIndexOf(':')),
      Number(this.target.slice(this.target.lastIndexOf(':') + 1)),
    ];
    this.server = createServer((client) => {
      const upstream = connect(port, host);
      this.sockets.add(client).add(upstream);
      client.on('data', (d: Buffer) => this.bytes.push(Buffer.from(d)));
      upstream.on('data', (d: Buffer) => this.bytes.push(Buffer.from(d)));
      client.pipe(upstream);
      upstream.pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end);
      upstream.on('error', end);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.address = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  recorded(): Buffer {
    return Buffer.concat(this.bytes);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

const apiKey = canary('openai-key', (t) => `sk-${t}`);
const envValue = canary('env-value');
const updated = canary('env-update');
let server: ServerProcess;
let proxy: RecordingProxy;
let cp: ControlPlane;
let sandbox: Sandbox;
let bootstrapSecret = '';

beforeAll(async () => {
  server = await spawnServer();
  cp = controlPlane(server.address, server.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'openai', { apiKey: apiKey.value });
  await cp.setEnv('acme', 'TOOL_TOKEN', envValue.value);
  proxy = new RecordingProxy(server.address);
  await proxy.open();
  const run = await cp.createRun('acme', 'openai');
  bootstrapSecret = run.bootstrapSecret;
  sandbox = makeSandbox();
  spawnAgent({ cwd: sandbox.dir, env: sandboxVariables(run, proxy.address) });
  const dotenv = () => {
    const text = readIfExists(sandbox.envFile);
    return text === undefined ? undefined : parseDotenv(text).dotenv;
  };
  await waitFor(() => dotenv()?.TOOL_TOKEN === envValue.value, 10_000, 'the first .env');
  await cp.setEnv('acme', 'TOOL_TOKEN', updated.value);
  await waitFor(() => dotenv()?.TOOL_TOKEN === updated.value, 5_000, 'the update');
}, 60_000);

afterAll(async () => {
  stopAgents();
  cp?.close();
  await proxy?.close();
  await server?.kill();
});

describe('a logging proxy between the agent and the control plane', () => {
  it('saw the whole exchange: attach, bundle, update', () => {
    // The attach, the sealed bundle and the sealed update crossed the proxy (each sealed
    // message is longer than the values it carries).
    const carried = apiKey.value.length + envValue.value.length + updated.value.length;
    expect(proxy.recorded().length).toBeGreaterThan(carried * 2);
  });

  it('learned no value in any encoding', () => {
    expect(leaksIn(proxy.recorded(), [apiKey, envValue, updated])).toEqual([]);
  });

  it('learned nothing of the bootstrap secret', () => {
    const secret = { label: 'bootstrap secret', value: bootstrapSecret };
    expect(leaksIn(proxy.recorded(), [secret])).toEqual([]);
    const raw = Buffer.from(bootstrapSecret, 'base64url');
    // No 16-byte window of the raw secret either.
    for (let i = 0; i + 16 <= raw.length; i++) {
      expect(proxy.recorded().includes(raw.subarray(i, i + 16))).toBe(false);
    }
  });
});
