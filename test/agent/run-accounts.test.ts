import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentConfig } from '../../agent/config.js';
import type { OutputStage, StageSecret } from '../../agent/output.js';
import { type AgentIo, runAgent } from '../../agent/run.js';
import { newCredential } from '../../common/proof.js';
import { newKeyPair, openWith, sealFor, sharedKey } from '../../common/sealing.js';
import {
  type AgentServiceServer,
  AgentServiceService,
  type AttachRequest,
  type AttachResponse,
  type Bundle,
  Envelope,
  Layer,
  type RefreshAccountRequest,
  type RefreshAccountResponse,
  RefreshAccountStatement,
} from '../../proto/gen/runkeys/v1/runs.js';
import { waitFor } from '../helpers/wait.js';
import { captureLog } from './log-capture.js';

// runAgent against a stand-in control plane (no server/ code): the first bundle writes the
// credential file, a token near expiry makes the agent ask RefreshAccount with a statement
// the control plane opens with its own key, and revocation removes the .env and the file.

const RUN_ID = 'run_00000000000000aa';
const TOKEN = 'gho_runtoken0123456789abcdef';

let stopServer: () => void = () => {};

afterEach(() => stopServer());

interface Fake {
  addr: string;
  statements: RefreshAccountStatement[];
  revoke(): void;
  serverKey: Uint8Array;
}

async function fakeControlPlane(bundle: Bundle): Promise<Fake> {
  const keys = newKeyPair();
  const statements: RefreshAccountStatement[] = [];
  let agentKey: Uint8Array | undefined;
  let stream: ServerWritableStream<AttachRequest, AttachResponse> | undefined;
  const send = (envelope: Envelope) => {
    const sealed = sealFor(Envelope.encode(envelope).finish(), agentKey!, keys.secretKey);
    stream?.write({
      message: {
        $case: 'sealed',
        value: { nonce: Buffer.from(sealed.nonce), box: Buffer.from(sealed.box) },
      },
    });
  };
  const impl: AgentServiceServer = {
    attach(call) {
      stream = call;
      agentKey = call.request.agentPublicKey;
      send({ runId: RUN_ID, body: { $case: 'bundle', value: bundle } });
    },
    refreshAccount(
      call: ServerUnaryCall<RefreshAccountRequest, RefreshAccountResponse>,
      callback: sendUnaryData<RefreshAccountResponse>,
    ) {
      const opened = openWith(call.request, sharedKey(agentKey!, keys.secretKey));
      statements.push(RefreshAccountStatement.decode(opened));
      callback(null, {});
    },
  };
  const server = new Server();
  server.addService(AgentServiceService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err === null ? resolve(p) : reject(err),
    ),
  );
  stopServer = () => server.forceShutdown();
  return {
    addr: `127.0.0.1:${port}`,
    statements,
    serverKey: keys.publicKey,
    revoke: () => {
      send({ runId: RUN_ID, body: { $case: 'revocation', value: { reason: 'ended' } } });
    },
  };
}

describe('runAgent() with connected accounts', () => {
  it('writes the file after registering its secret, asks for a refresh, removes all on revoke', async () => {
    const root = mkdtempSync(join(tmpdir(), 'runkeys-run-'));
    const home = join(root, 'home');
    const work = join(root, 'work');
    mkdirSync(home);
    mkdirSync(work);
    const bundle: Bundle = {
      version: 1,
      entries: [{ name: 'GH_TOKEN', value: TOKEN, layer: Layer.LAYER_ACCOUNT, sensitive: true }],
      files: [
        {
          path: '~/.config/gh/hosts.json',
          content: `{"oauth_token":"${TOKEN}"}`,
          sensitive: true,
          account: 'github',
          secrets: [TOKEN],
        },
      ],
      unset: [],
      conflicts: [],
      resumeCredential: '',
      // Due at once: the margin (5 s) is longer than the time left.
      accounts: [{ name: 'github', status: 'connected', expireTime: new Date(Date.now() + 3000) }],
    };
    const cp = await fakeControlPlane(bundle);
    const config: AgentConfig = {
      addr: cp.addr,
      runId: RUN_ID,
      bootstrapSecret: newCredential().credential,
      serverKey: cp.serverKey,
      envFile: join(work, 'env', '.env'),
      workDir: work,
      homeDir: home,
      waitMs: 5000,
      onRevoke: 'leave',
      command: [],
    };
    const file = join(home, '.config', 'gh', 'hosts.json');
    const registered: StageSecret[][] = [];
    const existedAtUpdate: boolean[] = [];
    const stage: OutputStage = {
      stream: () => new PassThrough(),
      update(secrets) {
        existedAtUpdate.push(existsSync(file));
        registered.push([...secrets]);
      },
    };
    const io: AgentIo = {
      env: {},
      stdin: process.stdin,
      stdout: new PassThrough(),
      stderr: new PassThrough(),
    };
    const { log, text } = captureLog();

    const exited = runAgent(config, stage, io, log);
    await waitFor(() => cp.statements.length > 0, 10_000, 'a RefreshAccount ask');
    expect(existedAtUpdate).toEqual([false]);
    expect(registered).toEqual([
      [
        { name: 'GH_TOKEN', value: TOKEN },
        { name: 'github', value: TOKEN },
      ],
    ]);
    expect(readFileSync(file, 'utf8')).toContain(TOKEN);
    expect(cp.statements[0]?.runId).toBe(RUN_ID);
    expect(cp.statements[0]?.account).toBe('github');
    expect(Math.abs(Date.now() - (cp.statements[0]?.time?.getTime() ?? 0))).toBeLessThan(5000);

    cp.revoke();
    expect(await exited).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(config.envFile)).toBe(false);
    expect(text()).not.toContain(TOKEN);
    expect(text()).toContain('run revoked; removed the .env and credential files');
  });
});
