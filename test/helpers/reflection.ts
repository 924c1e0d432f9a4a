import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  Client,
  type ClientDuplexStream,
  credentials,
  loadPackageDefinition,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

/**
 * A client that knows nothing of runkeys but what the server's reflection service tells it, as
 * grpcurl would: list the services, fetch the file descriptors, build types, call a method.
 */
const require = createRequire(import.meta.url);
const REFLECTION_PROTO = join(
  dirname(require.resolve('@grpc/reflection/package.json')),
  'build/proto/grpc/reflection/v1/reflection.proto',
);

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
  fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
  errorResponse?: { errorCode: number; errorMessage: string };
}

type ReflectionStream = ClientDuplexStream<object, ReflectionResponse>;
type ReflectionCtor = new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
) => Client & { serverReflectionInfo(): ReflectionStream };

function reflectionClient(address: string) {
  const definition = loadSync(REFLECTION_PROTO, { oneofs: true });
  const grpc = loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: ReflectionCtor } } };
  };
  return new grpc.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
}

export class ReflectionClient {
  private readonly client: ReturnType<typeof reflectionClient>;

  constructor(readonly address: string) {
    this.client = reflectionClient(address);
  }

  /** One request on its own stream, one answer. */
  private ask(request: object): Promise<ReflectionResponse> {
    return new Promise((resolve, reject) => {
      const stream = this.client.serverReflectionInfo();
      stream.once('data', (res: ReflectionResponse) => {
        stream.end();
        if (res.errorResponse !== undefined) {
          reject(new Error(`reflection: ${res.errorResponse.errorMessage}`));
        } else resolve(res);
      });
      stream.once('error', reject);
      stream.write(request);
    });
  }

  async listServices(): Promise<string[]> {
    const res = await this.ask({ listServices: '*' });
    return (res.listServicesResponse?.service ?? []).map((s) => s.name);
  }

  /** The types the server declares for a symbol, from its file and the files that file imports. */
  async rootFor(symbol: string): Promise<protobuf.Root> {
    const res = await this.ask({ fileContainingSymbol: symbol });
    const files = (res.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) =>
      descriptor.FileDescriptorProto.decode(bytes),
    );
    const root = (
      protobuf.Root as unknown as { fromDescriptor(set: object): protobuf.Root }
    ).fromDescriptor({ file: files });
    root.resolveAll();
    return root;
  }

  /**
   * Calls a unary method with messages built from reflected types only: the request is a plain
   * object checked against the request type, the response comes back as a plain object.
   */
  async call(
    service: string,
    method: string,
    request: Record<string, unknown>,
    metadata: Metadata,
  ): Promise<Record<string, unknown>> {
    const root = await this.rootFor(service);
    const m = root.lookupService(service).methods[method];
    if (m === undefined) throw new Error(`reflection: ${service} has no method ${method}`);
    const reqType = root.lookupType(m.requestType);
    const resType = root.lookupType(m.responseType);
    const problem = reqType.verify(request);
    if (problem !== null) throw new Error(`reflection: bad request: ${problem}`);
    const client = new Client(this.address, credentials.createInsecure());
    try {
      return await new Promise((resolve, reject) => {
        client.makeUnaryRequest(
          `/${service}/${method}`,
          (o: Record<string, unknown>) =>
            Buffer.from(reqType.encode(reqType.fromObject(o)).finish()),
          (b: Buffer) => resType.toObject(resType.decode(b), { defaults: true, longs: String }),
          request,
          metadata,
          (err: ServiceError | null, res?: Record<string, unknown>) =>
            err === null ? resolve(res!) : reject(err),
        );
      });
    } finally {
      client.close();
    }
  }

  close(): void {
    this.client.close();
  }
}
