import * as grpc from '@grpc/grpc-js';
import { clientOf, loadProtos } from '../grpc/protos';

/** A failed call: its gRPC status is the CLI's exit code. */
export class CallError extends Error {
  override readonly name = 'CallError';
  constructor(readonly code: grpc.status, readonly details: string) {
    super(details);
  }

  /** e.g. NOT_FOUND */
  get codeName(): string {
    return grpc.status[this.code] ?? `status ${this.code}`;
  }
}

type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response: unknown) => void) => grpc.ClientUnaryCall;

/** orchestrator.v1.OrchestratorService on one address; every call bounded by `timeoutMs`. */
export class OrchestratorClient {
  private readonly client: grpc.Client;

  constructor(readonly address: string, private readonly timeoutMs: number) {
    const Client = clientOf(loadProtos(['orchestrator.proto']), 'orchestrator.v1.OrchestratorService');
    this.client = new Client(address, grpc.credentials.createInsecure());
  }

  call<Res>(method: string, request: object, metadata: Record<string, string> = {}): Promise<Res> {
    const md = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) md.set(key, value);
    const fn = (this.client as unknown as Record<string, Unary>)[method];
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, md, { deadline: Date.now() + this.timeoutMs }, (err, response) => {
        if (err) reject(new CallError(err.code, err.details || err.message));
        else resolve(response as Res);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}
