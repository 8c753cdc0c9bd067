import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from '../engine/logger';
import { serviceOf, type LoadedProtos } from './protos';
import { withFileDependencies } from './reflection';

export interface ServiceBinding {
  /** Fully qualified, e.g. `orchestrator.v1.OrchestratorService`. */
  name: string;
  implementation: grpc.UntypedServiceImplementation;
}

export interface GrpcServerHandle {
  readonly port: number;
  /** Health NOT_SERVING, refuse new calls, let in-flight ones finish within graceMs, then cut them. */
  shutdown(graceMs: number): Promise<void>;
}

/** A gRPC server with the given services, server reflection and grpc.health.v1. */
export async function startGrpcServer(opts: { address: string; protos: LoadedProtos; services: ServiceBinding[]; log: Logger }): Promise<GrpcServerHandle> {
  // channelz keeps per-call statistics nobody reads here: off, it costs each call less.
  const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
  for (const { name, implementation } of opts.services) server.addService(serviceOf(opts.protos, name), implementation);
  new ReflectionService(withFileDependencies(opts.protos.packageDefinition)).addToServer(server);
  const health = new HealthImplementation(Object.fromEntries(['', ...opts.services.map((s) => s.name)].map((name) => [name, 'SERVING' as const])));
  health.addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  opts.log.info('gRPC server listening', { address: opts.address, port, services: opts.services.map((s) => s.name) });

  let stopping: Promise<void> | undefined;
  return {
    port,
    shutdown(graceMs) {
      stopping ??= new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        for (const s of opts.services) health.setStatus(s.name, 'NOT_SERVING');
        const timer = setTimeout(() => {
          opts.log.warn('grace period over: cutting the remaining calls', { graceMs });
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return stopping;
    },
  };
}
