import { credentials } from '@grpc/grpc-js';
import type { AuditEvent } from '../../proto/gen/runkeys/v1/admin.js';
import { ProviderCredential } from '../../proto/gen/runkeys/v1/provider_keys.js';
import {
  AgentServiceClient,
  type CreateRunResponse,
  type Run,
  RunServiceClient,
  type RunState,
} from '../../proto/gen/runkeys/v1/runs.js';
import { adminClients, call, closeClients } from './server.js';

/** Admin clients plus the two run services, bound to one address and one token. */
export function controlPlane(address: string, token: string) {
  const c = credentials.createInsecure();
  const admin = adminClients(address);
  const runs = new RunServiceClient(address, c);
  const agent = new AgentServiceClient(address, c);

  return {
    address,
    token,
    agent,
    runs,
    createCollection: (name: string) =>
      call(
        admin.collections.createCollection.bind(admin.collections),
        { name, description: '', maxOfflineSeconds: 0 },
        token,
      ),
    setProvider: (collection: string, provider: string, credential: Partial<ProviderCredential>) =>
      call(
        admin.providers.updateProviderKey.bind(admin.providers),
        {
          collection,
          provider,
          credential: ProviderCredential.fromPartial(credential),
          allowMissing: true,
        },
        token,
      ),
    setEnv: (collection: string, name: string, value: string, sensitive = true) =>
      call(
        admin.env.updateEnvVar.bind(admin.env),
        { collection, name, value, sensitive, allowOverride: false, allowMissing: true },
        token,
      ),
    deleteEnv: (collection: string, name: string) =>
      call(admin.env.deleteEnvVar.bind(admin.env), { collection, name }, token),
    createRun: (collection: string, provider: string, ttlSeconds = 0): Promise<CreateRunResponse> =>
      call(
        runs.createRun.bind(runs),
        { collection, runtime: { provider, auth: '', account: '' }, ttlSeconds, labels: {} },
        token,
      ),
    getRun: async (collection: string, id: string): Promise<Run> =>
      (await call(runs.getRun.bind(runs), { collection, id }, token)).run!,
    /** The ids of a collection's runs that read as `state` (all when unspecified), in order. */
    listRunIds: async (collection: string, state: RunState): Promise<string[]> =>
      (
        await call(
          runs.listRuns.bind(runs),
          { collection, state, pageSize: 1000, pageToken: '' },
          token,
        )
      ).runs.map((r) => r.id),
    endRun: (collection: string, id: string) =>
      call(runs.endRun.bind(runs), { collection, id }, token),
    /** Every audit event of the collection about one target, oldest first. */
    auditOf: async (collection: string, target: string): Promise<AuditEvent[]> => {
      const res = await call(
        admin.audit.listAuditEvents.bind(admin.audit),
        {
          collection,
          action: '',
          target,
          actor: '',
          startTime: undefined,
          endTime: undefined,
          pageSize: 1000,
          pageToken: '',
        },
        token,
      );
      return res.events.reverse();
    },
    close: () => {
      closeClients(admin);
      runs.close();
      agent.close();
    },
  };
}

export type ControlPlane = ReturnType<typeof controlPlane>;

/** The RUNKEYS_* variables an orchestrator hands the sandbox for one run. */
export function sandboxVariables(res: CreateRunResponse, address: string): Record<string, string> {
  return {
    RUNKEYS_ADDR: address,
    RUNKEYS_RUN_ID: res.run!.id,
    RUNKEYS_BOOTSTRAP_SECRET: res.bootstrapSecret,
    RUNKEYS_SERVER_KEY: res.serverPublicKey,
  };
}
