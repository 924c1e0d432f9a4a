import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { runningServers } from '../../server/presence.js';
import { openStore } from '../../server/store/open.js';
import { LightAgent } from '../helpers/accounts.js';
import { controlPlane } from '../helpers/runs.js';
import { startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

// A server counts as running on its store from before it opens its keyring until its last call
// has drained: rotate-master-key and copy-to-postgres must not start while it can still write.

const log = pino({ level: 'silent' });

describe('server presence', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers) await c();
  });

  it('lasts through the drain of calls still open, and ends with the server', async () => {
    const srv = await startTestServer();
    const cp = controlPlane(srv.address, srv.rootToken);
    const { db } = await openStore({ dataDir: srv.dataDir }, log);
    closers.push(() => db.destroy());
    await cp.createCollection('acme');
    await cp.setProvider('acme', 'anthropic', { apiKey: 'sk-ant-presence-0123456789' });
    const agent = new LightAgent(cp.agent, await cp.createRun('acme', 'anthropic'));
    await waitFor(() => agent.latest(), 10_000, 'the first bundle');
    expect(await runningServers(db)).toHaveLength(1);

    // The attach stream keeps the drain going for its grace period.
    const closing = srv.server.close(1500);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await runningServers(db)).toHaveLength(1);
    await closing;
    expect(await runningServers(db)).toEqual([]);
    cp.close();
  });
});
