import { type CallOptions, credentials, Metadata } from '@grpc/grpc-js';
import { CollectionServiceClient } from '../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceClient } from '../proto/gen/runkeys/v1/env_vars.js';
import { ProviderKeyServiceClient } from '../proto/gen/runkeys/v1/provider_keys.js';
import { RunServiceClient } from '../proto/gen/runkeys/v1/runs.js';

type Cb<Res> = (err: Error | null, res: Res) => void;

function unary<Req, Res>(
  method: (req: Req, md: Metadata, options: Partial<CallOptions>, cb: Cb<Res>) => unknown,
  req: Req,
  md: Metadata,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method(req, md, {}, (err, res) => (err === null ? resolve(res) : reject(err))),
  );
}

export interface RunVars {
  RUNKEYS_ADDR: string;
  RUNKEYS_RUN_ID: string;
  RUNKEYS_BOOTSTRAP_SECRET: string;
  RUNKEYS_SERVER_KEY: string;
}

/** A collection with a provider key and a few variables, and a way to make runs of it. */
export async function seedCollection(address: string, token: string, variables = 5) {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const c = credentials.createInsecure();
  const collections = new CollectionServiceClient(address, c);
  const providers = new ProviderKeyServiceClient(address, c);
  const env = new EnvVarServiceClient(address, c);
  const runs = new RunServiceClient(address, c);
  await unary(
    collections.createCollection.bind(collections),
    { name: 'bench', description: '', maxOfflineSeconds: 0 },
    md,
  );
  await unary(
    providers.createProviderKey.bind(providers),
    {
      collection: 'bench',
      provider: 'anthropic',
      credential: {
        apiKey: 'sk-ant-bench-0123456789abcdefghij',
        baseUrl: '',
        region: '',
        accessKeyId: '',
        secretAccessKey: '',
        sessionToken: '',
        bearerToken: '',
      },
    },
    md,
  );
  for (let i = 0; i < variables; i++) {
    await unary(
      env.createEnvVar.bind(env),
      {
        collection: 'bench',
        name: `BENCH_VAR_${i}`,
        value: `value-${i}-${'x'.repeat(32)}`,
        allowOverride: false,
      },
      md,
    );
  }
  return {
    async createRun(): Promise<RunVars> {
      const res = await unary(
        runs.createRun.bind(runs),
        {
          collection: 'bench',
          runtime: { provider: 'anthropic', auth: '', account: '' },
          ttlSeconds: 0,
          labels: {},
        },
        md,
      );
      return {
        RUNKEYS_ADDR: address,
        RUNKEYS_RUN_ID: res.run!.id,
        RUNKEYS_BOOTSTRAP_SECRET: res.bootstrapSecret,
        RUNKEYS_SERVER_KEY: res.serverPublicKey,
      };
    },
    close() {
      for (const client of [collections, providers, env, runs]) client.close();
    },
  };
}
