import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

type HealthClient = grpc.Client & {
  Check(request: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, response?: { status: string }) => void): void;
};

const Health = (grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as {
  grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => HealthClient } } };
}).grpc.health.v1.Health;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls grpc.health.v1.Health/Check on each address until it answers SERVING or `timeoutMs` has
 * passed. Resolves with the addresses that never did (empty when all serve).
 */
export async function waitServing(addresses: readonly string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const serving = await Promise.all(addresses.map(async (address) => {
    // Reconnect quickly: a server that is still starting refuses the first connections.
    const client = new Health(address, grpc.credentials.createInsecure(), { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 });
    try {
      for (;;) {
        const status = await new Promise<string | undefined>((resolve) => {
          client.Check({ service: '' }, { deadline: Math.min(deadline, Date.now() + 1_000) }, (err, res) => resolve(err ? undefined : res?.status));
        });
        if (status === 'SERVING') return true;
        if (Date.now() + 100 >= deadline) return false;
        await sleep(100);
      }
    } finally {
      client.close();
    }
  }));
  return addresses.filter((_, i) => !serving[i]);
}

/** `node dist/src/grpc/wait-serving.js [--timeout MS] HOST:PORT...`: exit 0 once all serve, else 1. */
async function main(argv: string[]): Promise<number> {
  let timeoutMs = 30_000;
  const addresses: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') timeoutMs = Number(argv[++i]);
    else addresses.push(argv[i]);
  }
  if (addresses.length === 0 || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    process.stderr.write('usage: wait-serving.js [--timeout MS] HOST:PORT...\n');
    return 2;
  }
  const missing = await waitServing(addresses, timeoutMs);
  if (missing.length > 0) process.stderr.write(`not serving after ${timeoutMs} ms: ${missing.join(', ')}\n`);
  return missing.length > 0 ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
