import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { packageRoot } from '../../common/package-root.js';
import { AdminTokenServiceService, AuditServiceService } from '../../proto/gen/runkeys/v1/admin.js';
import { CollectionServiceService } from '../../proto/gen/runkeys/v1/collections.js';
import { EnvVarServiceService } from '../../proto/gen/runkeys/v1/env_vars.js';
import {
  ConnectedAccountServiceService,
  OAuthClientServiceService,
} from '../../proto/gen/runkeys/v1/oauth.js';
import { ProviderKeyServiceService } from '../../proto/gen/runkeys/v1/provider_keys.js';
import { AgentServiceService, RunServiceService } from '../../proto/gen/runkeys/v1/runs.js';
import type { ServerConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { attachHandler } from '../runs/attach.js';
import { refreshAskHandler } from '../runs/refresh-ask.js';
import { reportHandler } from '../runs/report.js';
import { type RunDeps, runHandlers } from '../runs/service.js';
import { accountHandlers } from '../services/accounts.js';
import { adminTokenHandlers } from '../services/admin-tokens.js';
import { auditHandlers } from '../services/audit.js';
import { collectionHandlers } from '../services/collections.js';
import { envVarHandlers } from '../services/env-vars.js';
import { oauthClientHandlers } from '../services/oauth-clients.js';
import { providerKeyHandlers } from '../services/provider-keys.js';
import { type AdapterDeps, bindService, tolerantDecoding } from './adapter.js';

/** The largest request or response a client may send: a 64 KiB value with room to spare. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const protoRoot = (): string => join(packageRoot(import.meta.url), 'proto');

const PROTO_FILES = [
  'runkeys/v1/collections.proto',
  'runkeys/v1/provider_keys.proto',
  'runkeys/v1/env_vars.proto',
  'runkeys/v1/oauth.proto',
  'runkeys/v1/admin.proto',
  'runkeys/v1/runs.proto',
];

export const SERVICE_NAMES = [
  'runkeys.v1.CollectionService',
  'runkeys.v1.ProviderKeyService',
  'runkeys.v1.EnvVarService',
  'runkeys.v1.OAuthClientService',
  'runkeys.v1.ConnectedAccountService',
  'runkeys.v1.AdminTokenService',
  'runkeys.v1.AuditService',
  'runkeys.v1.RunService',
  'runkeys.v1.AgentService',
];

export function buildGrpcServer(
  adapter: AdapterDeps,
  deps: RunDeps,
  log: Logger,
): {
  server: Server;
  health: HealthImplementation;
} {
  const server = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  const add = bindService;
  server.addService(
    tolerantDecoding(CollectionServiceService),
    add(adapter, 'runkeys.v1.CollectionService', collectionHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(ProviderKeyServiceService),
    add(adapter, 'runkeys.v1.ProviderKeyService', providerKeyHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(EnvVarServiceService),
    add(adapter, 'runkeys.v1.EnvVarService', envVarHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(OAuthClientServiceService),
    add(adapter, 'runkeys.v1.OAuthClientService', oauthClientHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(ConnectedAccountServiceService),
    add(adapter, 'runkeys.v1.ConnectedAccountService', accountHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(AdminTokenServiceService),
    add(adapter, 'runkeys.v1.AdminTokenService', adminTokenHandlers(deps)),
  );
  server.addService(
    tolerantDecoding(AuditServiceService),
    add(adapter, 'runkeys.v1.AuditService', auditHandlers(deps)),
  );

  server.addService(
    tolerantDecoding(RunServiceService),
    add(adapter, 'runkeys.v1.RunService', runHandlers(deps)),
  );
  // The agent proves itself with its run's bootstrap or resume credential, not a bearer token.
  server.addService(tolerantDecoding(AgentServiceService), {
    attach: attachHandler(deps, log),
    refreshAccount: refreshAskHandler(deps, log),
    report: reportHandler(deps, log),
  });

  const health = new HealthImplementation(
    Object.fromEntries(['', ...SERVICE_NAMES].map((s) => [s, 'NOT_SERVING' as const])),
  );
  health.addToServer(server);

  // Reflection describes the runkeys services and the health service alike.
  const definitions = loadSync([...PROTO_FILES, healthProtoPath], { includeDirs: [protoRoot()] });
  new ReflectionService(definitions).addToServer(server);
  return { server, health };
}

export function serverCredentials(config: ServerConfig): ServerCredentials {
  if (config.tls === undefined) return ServerCredentials.createInsecure();
  const ca = config.tls.clientCaPath === undefined ? null : readFileSync(config.tls.clientCaPath);
  return ServerCredentials.createSsl(
    ca,
    [
      {
        cert_chain: readFileSync(config.tls.certPath),
        private_key: readFileSync(config.tls.keyPath),
      },
    ],
    ca !== null,
  );
}
