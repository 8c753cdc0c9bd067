import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { call, healthCheck, Proc, Stack, waitServing } from '../helpers/stack';
import { rejectionOf, waitFor } from '../helpers/wait';

describe('orchestrator process lifecycle', function () {
  this.timeout(60_000);

  it('on SIGTERM a slow sync call still completes, new calls are refused, and the process exits 0', async () => {
    const stack = await Stack.start({ transport: 'memory' });
    try {
      const slow = call<{ RequestID: string; PaymentID: string }>(stack.booking, 'HandleSyncBooking', { ProductID: 1, DelayMs: 1500 }, { 'x-request-id': 'slow-1' });
      // The payment node is waiting on its delay once the order exists.
      await waitFor(() => stack.orchestrator.logs().some((l) => l.requestId === 'slow-1' && l.node === 'createOrder' && l.message === 'step succeeded'), 5_000, 'the slow call to be in flight');
      stack.orchestrator.kill('SIGTERM');
      await waitFor(async () => (await healthCheck(stack.address).catch(() => 'GONE')) !== 'SERVING', 5_000, 'health to stop serving');
      // A new call, while the slow one is still in hand: refused, and nothing booked for it.
      const refused = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'after-sigterm' }));
      expect(refused.code, refused.message).to.equal(grpc.status.UNAVAILABLE);
      const { response } = await slow;
      expect(response.RequestID).to.equal('slow-1');
      expect(Number(response.PaymentID)).to.be.greaterThan(0);
      expect(await stack.orchestrator.exited).to.equal(0);
      const messages = stack.orchestrator.logs().map((l) => l.message);
      expect(messages).to.include.members(['signal received', 'draining', 'stopped']);
      expect(stack.orchestrator.logs().filter((l) => l.requestId === 'after-sigterm'), 'log lines of the refused call').to.deep.equal([]);
      const order = await rejectionOf(call(stack.orders, 'GetOrder', { request_id: 'after-sigterm' }));
      expect(order.code, 'an order for the refused call').to.equal(grpc.status.NOT_FOUND);
    } finally {
      await stack.stop();
    }
  });

  it('answers UNAVAILABLE naming the node when an upstream is down; compensation waits for it, then RetryCompensation finishes', async () => {
    // Compensation retries span more than the upstream channel's longest reconnect backoff (1 s), so
    // that once the service is back, RetryCompensation reaches it.
    const stack = await Stack.start({ transport: 'memory', compensation: '{ maxAttempts: 4, initialBackoffMs: 400, jitter: 0 }' });
    try {
      const payment = stack.procs[1];
      payment.kill('SIGTERM');
      await payment.exited;
      const err = await rejectionOf(call(stack.booking, 'HandleSyncBooking', { ProductID: 1 }, { 'x-request-id': 'down-1' }));
      expect(err.code).to.equal(grpc.status.UNAVAILABLE);
      expect(err.details).to.contain('createPayment');
      // The payment call may have acted, and its refund cannot be checked while the service is down.
      const stuck = await stack.sagaReaches('down-1', 'COMPENSATION_FAILED');
      expect(stuck.steps.map((s) => s.status)).to.deep.equal(['SUCCEEDED', 'STEP_COMPENSATION_FAILED']);
      const back = stack.spawn(['dist/src/examples/booking/services/main.js', 'payment', `127.0.0.1:${stack.ports.payment}`]);
      await waitServing(`127.0.0.1:${stack.ports.payment}`, back);
      await call(stack.sagas, 'RetryCompensation', { request_id: 'down-1' });
      await stack.sagaReaches('down-1', 'COMPENSATED');
      expect((await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'down-1' })).response.status).to.equal('CANCELLED');
    } finally {
      await stack.stop();
    }
  });

  it('refuses to start on a bad app.yaml, naming the file and the key', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'och-bad-'));
    writeFileSync(path.join(dir, 'app.yaml'), 'grpc:\n  port: 10000\n  prot: 1\n');
    const proc = new Proc(['dist/src/main.js'], { OCH_PATH: dir });
    expect(await proc.exited).to.equal(78);
    expect(proc.lines.join('\n')).to.contain(`${path.join(dir, 'app.yaml')}: grpc.prot: unknown key`);
  });

  it('exits 1 with a clear message when Kafka is configured but unreachable', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'och-nokafka-'));
    writeFileSync(path.join(dir, 'app.yaml'), 'grpc: { port: 0 }\nhttp: { port: 0 }\ntransport:\n  driver: kafka\n  kafka: { brokers: [127.0.0.1:1], connectTimeoutMs: 2000 }\n');
    const proc = new Proc(['dist/src/main.js'], { OCH_PATH: dir });
    expect(await proc.exited).to.equal(1);
    const failure = proc.logs().find((l) => l.message === 'start-up failed');
    expect(failure?.error).to.match(/Kafka brokers 127.0.0.1:1 unreachable/);
  });
});
