import { ChannelCredentials, Client, loadPackageDefinition, Metadata } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Enum, Method, Root, Service, Type } from 'protobufjs';
import { FileDescriptorProto, FileDescriptorSet } from 'protobufjs/ext/descriptor';

/**
 * A gRPC client that knows nothing but what the server's reflection service tells it, as grpcurl does:
 * it fetches the FileDescriptorProtos of a service (and their imports) over grpc.reflection.v1, builds the
 * message types from them, parses request JSON the way protojson does (a key is a field's proto name or its
 * lowerCamelCase JSON name; anything else is an error naming the message type and the key) and calls the
 * method with those types' own encoders. The project's generated stubs are never used.
 */
export class ReflectionClient {
  private readonly reflection: ReflectionStub;

  /** `metadata` goes with every call, reflection included (grpcurl's `-H`). */
  constructor(address: string, channelCredentials: ChannelCredentials, private readonly metadata: Metadata = new Metadata()) {
    const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
    const definitions = loadPackageDefinition(loadSync(reflectionProto)) as unknown as ReflectionPackage;
    this.reflection = new definitions.grpc.reflection.v1.ServerReflection(address, channelCredentials);
  }

  /** The methods of a fully qualified service (`kcache.v1.Generation`), with types built from reflection. */
  async describe(serviceName: string): Promise<Service> {
    const files = await this.fetchFiles({ fileContainingSymbol: serviceName });
    const root = (Root as unknown as { fromDescriptor(set: object): Root }).fromDescriptor(FileDescriptorSet.fromObject({ file: files }));
    return root.lookupService(serviceName);
  }

  /**
   * Calls `Service/Method` (grpcurl's spelling, `kcache.v1.Generation/Generate`) with a JSON request and
   * returns every response message as a plain object keyed by proto field names (server streaming or unary alike).
   */
  async invoke(fullMethod: string, requestJson: string): Promise<Record<string, unknown>[]> {
    const slash = fullMethod.lastIndexOf('/');
    const service = await this.describe(fullMethod.slice(0, slash));
    const method = service.methods[fullMethod.slice(slash + 1)];
    if (method === undefined) throw new Error(`service "${service.fullName.slice(1)}" has no method "${fullMethod.slice(slash + 1)}"`);
    method.resolve();
    const requestType = method.resolvedRequestType as Type;
    const responseType = method.resolvedResponseType as Type;
    const request = requestType.fromObject(fromProtoJson(requestType, JSON.parse(requestJson)));
    return this.call(method, `/${fullMethod}`, requestType.encode(request).finish(), responseType, this.metadata);
  }

  close(): void {
    this.reflection.close();
  }

  private call(method: Method, path: string, body: Uint8Array, responseType: Type, metadata: Metadata): Promise<Record<string, unknown>[]> {
    const serialize = (bytes: Uint8Array) => Buffer.from(bytes);
    const deserialize = (bytes: Buffer) => responseType.toObject(responseType.decode(bytes), { enums: String, defaults: false });
    return new Promise((resolve, reject) => {
      if (method.responseStream) {
        const responses: Record<string, unknown>[] = [];
        const call = this.reflection.makeServerStreamRequest(path, serialize, deserialize, body, metadata);
        call.on('data', (response: Record<string, unknown>) => responses.push(response));
        call.on('error', reject);
        call.on('end', () => resolve(responses));
      } else {
        this.reflection.makeUnaryRequest(path, serialize, deserialize, body, metadata, (error, response) =>
          error || response === undefined ? reject(error) : resolve([response]),
        );
      }
    });
  }

  /** The files a reflection request names, then every import not yet received, as FileDescriptorProto objects. */
  private async fetchFiles(first: ReflectionRequest): Promise<object[]> {
    const call = this.reflection.ServerReflectionInfo(this.metadata);
    const files = new Map<string, { dependency?: string[] }>();
    const ask = (request: ReflectionRequest) =>
      new Promise<void>((resolve, reject) => {
        call.once('error', reject);
        call.once('data', (response: ReflectionResponse) => {
          call.off('error', reject);
          if (response.errorResponse) return reject(new Error(`reflection: ${response.errorResponse.errorMessage}`));
          for (const bytes of response.fileDescriptorResponse?.fileDescriptorProto ?? []) {
            const file = FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes)) as { name: string; dependency?: string[] };
            files.set(file.name, file);
          }
          resolve();
        });
        call.write(request);
      });
    try {
      await ask(first);
      for (let missing = missingImports(files); missing.length > 0; missing = missingImports(files)) {
        for (const name of missing) await ask({ fileByFilename: name });
      }
    } finally {
      call.end();
    }
    return [...files.values()];
  }
}

function missingImports(files: Map<string, { dependency?: string[] }>): string[] {
  return [...new Set([...files.values()].flatMap((file) => file.dependency ?? []))].filter((name) => !files.has(name));
}

/** protojson's default JSON name: `max_new_tokens` → `maxNewTokens`. */
function lowerCamel(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** JSON as protojson reads it → the object protobufjs' fromObject takes (keys are field names). */
function fromProtoJson(type: Type, json: unknown): Record<string, unknown> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`message type "${type.fullName.slice(1)}" must be a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = type.fieldsArray.find((f) => f.name === key || lowerCamel(f.name) === key);
    if (field === undefined) throw new Error(`Message type "${type.fullName.slice(1)}" has no field named "${key}"`);
    field.resolve();
    const convert = (item: unknown) => (field.resolvedType instanceof Type ? fromProtoJson(field.resolvedType, item) : checkEnum(field.resolvedType, item));
    out[field.name] = field.repeated && Array.isArray(value) ? value.map(convert) : convert(value);
  }
  return out;
}

function checkEnum(type: Type | Enum | null, value: unknown): unknown {
  if (type instanceof Enum && typeof value === 'string' && type.values[value] === undefined) {
    throw new Error(`enum "${type.fullName.slice(1)}" has no value named "${value}"`);
  }
  return value;
}

interface ReflectionRequest {
  readonly fileContainingSymbol?: string;
  readonly fileByFilename?: string;
}

interface ReflectionResponse {
  readonly fileDescriptorResponse?: { readonly fileDescriptorProto: Buffer[] };
  readonly errorResponse?: { readonly errorMessage: string };
}

type ReflectionStub = Client & {
  ServerReflectionInfo(metadata: Metadata): import('@grpc/grpc-js').ClientDuplexStream<ReflectionRequest, ReflectionResponse>;
};

interface ReflectionPackage {
  readonly grpc: { readonly reflection: { readonly v1: { readonly ServerReflection: new (address: string, creds: ChannelCredentials) => ReflectionStub } } };
}
