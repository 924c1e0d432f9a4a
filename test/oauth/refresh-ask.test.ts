import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { sharedKey } from '../../common/sealing.js';
import {
  askRefresh,
  COLLECTION,
  LightAgent,
  type OAuthWorld,
  oauthWorld,
} from '../helpers/accounts.js';
import { agentKeys, keyOf } from '../helpers/attach.js';
import { waitFor } from '../helpers/wait.js';

// AgentService.RefreshAccount: an agent asks for a token near expiry. The ask is sealed with the
// key the run is bound to, so nobody else can make the control plane call the provider.

const REFUSED = 'refresh refused: the request does not open under the key this run is bound to';

let w: OAuthWorld | undefined;
const agents: LightAgent[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) a.stop();
  await w?.close();
  w = undefined;
});

async function setup(ttl: number, sweepMs: number) {
  w = await oauthWorld({ accessTokenTtlSeconds: ttl, refresh: { minMarginMs: 3_000, sweepMs } });
  await w.cp.setProvider(COLLECTION, 'anthropic', { apiKey: 'sk-ant-refresh-ask-0001' });
  await w.registerClient('gh');
  await w.connect('octo', 'gh');
  const agent = new LightAgent(w.cp.agent, await w.cp.createRun(COLLECTION, 'anthropic'));
  agents.push(agent);
  await waitFor(() => agent.value('GH_TOKEN'), 5_000, 'the first bundle');
  return { world: w, agent };
}

describe('an agent asking for a refresh', () => {
  it('refreshes a token that is due, and the new one arrives on the stream', async () => {
    // The sweep is too slow to matter here: only the ask can refresh in time.
    const { world, agent } = await setup(4, 600_000);
    const first = agent.value('GH_TOKEN');
    expect(await agent.ask(world.cp.agent, 'octo')).toBeUndefined();
    expect(world.oidc.tokenRequests('refresh_token')).toBe(0);
    await new Promise((r) => setTimeout(r, 2_100));
    expect(await agent.ask(world.cp.agent, 'octo')).toBeUndefined();
    expect(world.oidc.tokenRequests('refresh_token')).toBe(1);
    await waitFor(() => agent.value('GH_TOKEN') !== first, 2_000, 'the new token');
  }, 20_000);

  it('refuses an ask sealed with any other key, an old one, or for an account it lacks', async () => {
    const { world, agent } = await setup(300, 600_000);
    const stranger = sharedKey(keyOf(agent.run.serverPublicKey), agentKeys().secretKey);
    expect(await askRefresh(world.cp.agent, agent.run.run!.id, 'octo', stranger)).toEqual({
      code: status.UNAUTHENTICATED,
      details: REFUSED,
    });
    const old = new Date(Date.now() - 120_000);
    expect(await agent.ask(world.cp.agent, 'octo', old)).toEqual({
      code: status.UNAUTHENTICATED,
      details: REFUSED,
    });
    expect(await agent.ask(world.cp.agent, 'someone-else')).toEqual({
      code: status.FAILED_PRECONDITION,
      details: `run ${agent.run.run!.id} receives no account named "someone-else"`,
    });
    expect(world.oidc.tokenRequests('refresh_token')).toBe(0);
  }, 20_000);
});
