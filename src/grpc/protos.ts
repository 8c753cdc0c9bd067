import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** proto/ at the repository root (this file runs from dist/src/grpc/). */
export const PROTO_DIR = path.resolve(__dirname, '..', '..', '..', 'proto');

export interface LoadedProtos {
  packageDefinition: protoLoader.PackageDefinition;
  grpcObject: grpc.GrpcObject;
}

/** Field names as written in the .proto (ProductID, request_id); int64 as decimal strings. */
export function loadProtos(files: string[]): LoadedProtos {
  const packageDefinition = protoLoader.loadSync(files.map((f) => path.join(PROTO_DIR, f)), {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  return { packageDefinition, grpcObject: grpc.loadPackageDefinition(packageDefinition) };
}

/** The service definition at a dotted path such as `orchestrator.v1.OrchestratorService`. */
export function serviceOf(protos: LoadedProtos, dotted: string): grpc.ServiceDefinition {
  let node: unknown = protos.grpcObject;
  for (const part of dotted.split('.')) node = (node as Record<string, unknown>)[part];
  const service = (node as { service?: grpc.ServiceDefinition } | undefined)?.service;
  if (!service) throw new Error(`service ${dotted} not found in loaded protos`);
  return service;
}

/** A client constructor at a dotted path, for the demo upstream clients and tests. */
export function clientOf(protos: LoadedProtos, dotted: string): grpc.ServiceClientConstructor {
  let node: unknown = protos.grpcObject;
  for (const part of dotted.split('.')) node = (node as Record<string, unknown>)[part];
  if (typeof node !== 'function') throw new Error(`client ${dotted} not found in loaded protos`);
  return node as grpc.ServiceClientConstructor;
}
