// The floor for bench/attach.ts: a bare grpc-js server whose AgentService.Attach writes one
// message of a bundle's size at once and ends. No proof, no store, no sealing.
import { randomBytes } from 'node:crypto';
import { Server, ServerCredentials, type ServerWritableStream } from '@grpc/grpc-js';
import {
  AgentServiceService,
  type AttachRequest,
  type AttachResponse,
} from '../proto/gen/runkeys/v1/runs.js';

const BOX_BYTES = Number(process.argv[2] ?? 600);
const server = new Server();
server.addService(AgentServiceService, {
  attach(call: ServerWritableStream<AttachRequest, AttachResponse>) {
    const value = { nonce: randomBytes(24), box: randomBytes(BOX_BYTES) };
    call.write({ message: { $case: 'sealed', value } });
    call.end();
  },
});
server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
  if (err !== null) throw err;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => server.forceShutdown());
