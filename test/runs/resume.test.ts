import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeCredential } from '../../common/proof.js';
import type { Envelope } from '../../proto/gen/runkeys/v1/runs.js';
import {
  type AgentKeys,
  AttachStream,
  agentKeys,
  attachRequest,
  bundleOf,
  keyOf,
  openEnvelope,
  secretOf,
} from '../helpers/attach.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// What follows the first attach on the wire: resuming a dropped stream, and the sealed
// revocation that ends one.

const RESUME_REFUSED = {
  code: status.UNAUTHENTICATED,
  details: 'resume refused: the resume credential or agent key does not match the run',
};

let skew = 0;
let srv: TestServer;
let cp: ControlPlane;

beforeAll(async () => {
  srv = await startTestServer({ now: () => Date.now() + skew });
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-resume-0123456789' });
});

afterEach(() => {
  skew = 0;
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

/** One agent's view of a run it attached to. */
interface Attached {
  runId: string;
  serverKey: Uint8Array;
  keys: AgentKeys;
  stream: AttachStream;
  resume: Uint8Array;
  version: number;
}

async function attached(): Promise<Attached> {
  const res = await cp.createRun('acme', 'anthropic');
  const keys = agentKeys();
  const runId = res.run!.id;
  const credential = secretOf(res.bootstrapSecret);
  const stream = new AttachStream(cp.agent, attachRequest({ runId, credential, keys }));
  const serverKey = keyOf(res.serverPublicKey);
  const bundle = bundleOf(openEnvelope(await stream.next(), serverKey, keys));
  const resume = decodeCredential(bundle.resumeCredential)!;
  return { runId, serverKey, keys, stream, resume, version: bundle.version };
}

function resume(a: Attached, keys = a.keys, credential = a.resume): AttachStream {
  const req = attachRequest({
    runId: a.runId,
    credential,
    keys,
    kind: 'resume',
    heldVersion: a.version,
  });
  return new AttachStream(cp.agent, req);
}

async function nextEnvelope(a: Attached, stream: AttachStream): Promise<Envelope> {
  return openEnvelope(await stream.next(), a.serverKey, a.keys);
}

describe('Resume', () => {
  it('resumes with the resume credential and the same key, with a new credential', async () => {
    const a = await attached();
    a.stream.cancel();
    const stream = resume(a);
    const bundle = bundleOf(await nextEnvelope(a, stream));
    stream.cancel();
    expect(bundle.version).toBe(a.version);
    expect(decodeCredential(bundle.resumeCredential)).toBeDefined();
    expect(bundle.resumeCredential).not.toBe(Buffer.from(a.resume).toString('base64url'));
  });

  it('refuses a resume with another key', async () => {
    const a = await attached();
    a.stream.cancel();
    expect(await resume(a, agentKeys()).closed()).toEqual(RESUME_REFUSED);
  });

  it('refuses a resume with the bootstrap secret in place of the resume credential', async () => {
    const res = await cp.createRun('acme', 'anthropic');
    const keys = agentKeys();
    const secret = secretOf(res.bootstrapSecret);
    const first = new AttachStream(
      cp.agent,
      attachRequest({ runId: res.run!.id, credential: secret, keys }),
    );
    await first.next();
    first.cancel();
    const req = attachRequest({ runId: res.run!.id, credential: secret, keys, kind: 'resume' });
    expect(await new AttachStream(cp.agent, req).closed()).toEqual(RESUME_REFUSED);
  });

  it('refuses a resume after the run ended', async () => {
    const a = await attached();
    a.stream.cancel();
    await cp.endRun('acme', a.runId);
    expect(await resume(a).closed()).toEqual({
      code: status.FAILED_PRECONDITION,
      details: `run ${a.runId} has ended; resume is refused`,
    });
  });

  it("refuses a resume after the run's TTL ran out", async () => {
    const a = await attached();
    a.stream.cancel();
    skew = 2 * 3600 * 1000;
    expect(await resume(a).closed()).toEqual({
      code: status.FAILED_PRECONDITION,
      details: `run ${a.runId} has expired; resume is refused`,
    });
  });
});

describe('Revocation on the wire', () => {
  it('sends a sealed revocation when the run ends, then closes the stream', async () => {
    const a = await attached();
    await cp.endRun('acme', a.runId);
    const envelope = await nextEnvelope(a, a.stream);
    expect(envelope.body).toEqual({ $case: 'revocation', value: { reason: 'ended' } });
    expect((await a.stream.closed()).code).toBe(status.OK);
  });

  it('sends a sealed update when a variable changes', async () => {
    const a = await attached();
    await cp.setEnv('acme', 'LATE', 'late-value-0123');
    const bundle = bundleOf(await nextEnvelope(a, a.stream));
    a.stream.cancel();
    expect(bundle.version).toBeGreaterThan(a.version);
    expect(bundle.entries.find((e) => e.name === 'LATE')?.value).toBe('late-value-0123');
    expect(bundle.resumeCredential).toBe('');
  });
});
