import { expect } from 'chai';
import { freshDatabase } from '../helpers/postgres';
import { Stack } from '../helpers/stack';

/**
 * Leases and step messages tell "an earlier run of this pod" by the pod id: two live instances
 * under one pod id would drop each other's throttled steps. The second is refused; a restart after
 * kill -9 under the same pod id (what an operator, or Kubernetes, does) starts at once.
 */
describe('one live instance per pod id (Postgres store)', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let db: Awaited<ReturnType<typeof freshDatabase>> | undefined;
  afterEach(async () => {
    await stack?.stop();
    await db?.drop();
    stack = db = undefined;
  });

  it('a second live instance under a pod id in use exits naming it; a restart after kill -9 under it serves', async () => {
    db = await freshDatabase();
    stack = await Stack.start({ transport: 'memory', postgres: db.dsn });
    const refusal = await stack.startInstance('e2e').then(() => 'started', (err: Error) => err.message);
    expect(refusal).to.match(/exited with 1 before serving/).and.match(/pod id e2e is in use by another live instance/);

    stack.orchestrator.kill('SIGKILL');
    await stack.orchestrator.exited;
    // Serving (health SERVING) as soon as it is up: Postgres let the lock go with the killed process's connection.
    await stack.startOrchestrator('e2e');
  });
});
