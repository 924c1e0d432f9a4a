import { status } from '@grpc/grpc-js';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Db } from './store/db.js';

/**
 * The control plane's Prometheus metrics, served at /metrics on the HTTP listener. Labels carry
 * method names, status codes, outcomes and account statuses: never a value, a name of a
 * variable, a collection or a token. Each server has its own registry (several may run in one
 * process, as in the tests).
 */
export class Metrics {
  readonly registry = new Registry();
  readonly attached: Gauge;
  readonly attaches: Counter<'kind' | 'outcome'>;
  readonly deliveries: Counter<'kind'>;
  readonly fanout: Histogram;
  readonly refreshes: Counter<'outcome'>;
  readonly receipts: Counter;
  readonly leaks: Counter<'stream'>;
  readonly rpc: Histogram<'method' | 'code'>;

  constructor(db: Db) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'runkeys_' });
    this.attached = new Gauge({
      name: 'runkeys_attached_agents',
      help: 'Agents with an Attach stream open on this replica.',
      registers,
    });
    this.attaches = new Counter({
      name: 'runkeys_attaches_total',
      help: 'Attach streams by kind (attach, resume) and outcome (ok, refused, error).',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.deliveries = new Counter({
      name: 'runkeys_deliveries_total',
      help: 'Sealed messages sent to agents: bundle (at attach or resume), update, revocation.',
      labelNames: ['kind'],
      registers,
    });
    this.fanout = new Histogram({
      name: 'runkeys_update_fanout_seconds',
      help: 'From this replica seeing a new collection version to an update sent on a stream.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.refreshes = new Counter({
      name: 'runkeys_refreshes_total',
      help: 'OAuth refreshes run by this replica, by outcome.',
      labelNames: ['outcome'],
      registers,
    });
    this.receipts = new Counter({
      name: 'runkeys_receipts_total',
      help: 'Bundle versions agents acknowledged applying.',
      registers,
    });
    this.leaks = new Counter({
      name: 'runkeys_scrubbed_total',
      help: 'Values agents replaced in run output, by stream (stdout, stderr, trajectory).',
      labelNames: ['stream'],
      registers,
    });
    this.rpc = new Histogram({
      name: 'runkeys_rpc_duration_seconds',
      help: 'Unary RPCs by method and status code.',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: 'runkeys_accounts',
      help: 'Connected accounts in the store, by status.',
      labelNames: ['status'],
      registers,
      async collect() {
        const rows = await db
          .selectFrom('accounts')
          .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
          .groupBy('status')
          .execute();
        this.reset();
        for (const s of ['connected', 'refresh_failing', 'needs_reconnect'])
          this.set({ status: s }, 0);
        for (const r of rows) this.set({ status: r.status }, Number(r.n));
      },
    });
  }

  /** Times a unary call; the code is the gRPC status name. */
  observeRpc(method: string, code: status, seconds: number): void {
    this.rpc.observe({ method, code: status[code] ?? String(code) }, seconds);
  }
}
