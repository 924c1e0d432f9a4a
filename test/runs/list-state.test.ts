import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunState } from '../../proto/gen/runkeys/v1/runs.js';
import { type ControlPlane, controlPlane } from '../helpers/runs.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// ListRuns filters on the state a run reads as: a run whose TTL ran out is listed as expired,
// and no longer as pending or attached, before anything marks it so.

let srv: TestServer;
let cp: ControlPlane;
let clock = Date.now();

beforeAll(async () => {
  srv = await startTestServer({ now: () => clock });
  cp = controlPlane(srv.address, srv.rootToken);
  await cp.createCollection('acme');
  await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-list-0123456789abcdef' });
});

afterAll(async () => {
  cp.close();
  await srv.close();
});

describe('runs list --state', () => {
  it('lists a run past its TTL as expired, not pending', async () => {
    const short = (await cp.createRun('acme', 'anthropic', 60)).run!.id;
    const long = (await cp.createRun('acme', 'anthropic', 3600)).run!.id;
    const ended = (await cp.createRun('acme', 'anthropic', 60)).run!.id;
    await cp.endRun('acme', ended);
    const sorted = (ids: string[]) => [...ids].sort();

    expect(await cp.listRunIds('acme', RunState.RUN_STATE_PENDING)).toEqual(sorted([short, long]));
    expect(await cp.listRunIds('acme', RunState.RUN_STATE_EXPIRED)).toEqual([]);

    clock += 120_000;
    expect(await cp.listRunIds('acme', RunState.RUN_STATE_PENDING)).toEqual([long]);
    expect(await cp.listRunIds('acme', RunState.RUN_STATE_EXPIRED)).toEqual([short]);
    // An ended run stays ended, whatever its TTL says.
    expect(await cp.listRunIds('acme', RunState.RUN_STATE_ENDED)).toEqual([ended]);
    expect(await cp.listRunIds('acme', RunState.RUN_STATE_UNSPECIFIED)).toEqual(
      sorted([short, long, ended]),
    );
    expect((await cp.getRun('acme', short)).state).toBe(RunState.RUN_STATE_EXPIRED);
  });
});
