/**
 * A facade example: how it is registered and exposed. Adding one means a folder
 * src/examples/<name>/ whose index.ts exports an `Example`, its .proto files under proto/, its
 * topics in topics/topics.ts, and one line in EXAMPLES (src/examples/index.ts); src/grpc/ and
 * src/app.ts never change. Every facade an example registers can also be started, inspected and
 * steered through the generic orchestrator.v1.OrchestratorService; `services` is only for an
 * example that keeps a typed gRPC API of its own (booking's pb.BookingService).
 */
import type { AppConfig } from '../config/schema';
import type { Logger } from '../engine/logger';
import type { Orchestrator } from '../engine/orchestrator';
import type { FacadeRegistry } from '../engine/registry';
import type { Transport } from '../engine/transport';
import type { ServiceBinding } from '../grpc/server';

/** What an example may use to build its facades. */
export interface ExampleDeps {
  /** Addresses of the upstream services (app.yaml `upstreams`). */
  upstreams: Readonly<AppConfig['upstreams']>;
  /** The examples' own settings (app.yaml `examples`). */
  examples: Readonly<AppConfig['examples']>;
  log: Logger;
}

export interface Example {
  /** For logs and start-up errors. */
  readonly name: string;
  /** Under proto/: the files declaring the services `services` returns (none without services). */
  readonly protoFiles: readonly string[];
  /**
   * Registers the example's facades, creating the clients they call. Returns what closes those
   * clients, if anything: it runs at shutdown, once the transport has drained (compensations still
   * call upstreams while it does).
   */
  register(registry: FacadeRegistry, deps: ExampleDeps): (() => Promise<void> | void) | void;
  /** The example's own gRPC services, served beside orchestrator.v1.OrchestratorService. */
  services?(orchestrator: Orchestrator, log: Logger): ServiceBinding[];
  /**
   * Embedded mode only (in-process transport, no Kafka): starts in this process the workers that
   * would otherwise consume its topics elsewhere (e.g. an external step's worker). Returns what stops them.
   */
  embedded?(transport: Transport, deps: ExampleDeps): Promise<() => Promise<void> | void>;
}
