import { expect } from 'chai';
import type { Logger } from '../../src/engine/logger';
import { PoisonMessageError } from '../../src/engine/errors';
import { MemoryTransport } from '../../src/transport/memory-transport';
import { waitFor } from '../helpers/wait';

const TOPICS = [{ name: 'work', partitions: 1, deadLetter: 'dlq' }, { name: 'dlq', partitions: 1 }];

function recordingLogger(lines: { msg: string; meta?: Record<string, unknown> }[]): Logger {
  const log: Logger = {
    debug: () => undefined, info: () => undefined, error: () => undefined,
    warn: (msg: string, meta?: Record<string, unknown>) => { lines.push({ msg, meta }); },
    child: () => log,
  };
  return log;
}

describe('MemoryTransport: dead letters stay bounded', () => {
  it('keeps the newest dead letters up to the cap, dropping the oldest with a log line and a metric', async () => {
    const lines: { msg: string; meta?: Record<string, unknown> }[] = [];
    const dropped: number[] = [];
    const metrics = { deadLettered: () => undefined, deadLettersDropped: (_topic: string, n: number) => { dropped.push(n); } };
    const transport = new MemoryTransport(TOPICS, recordingLogger(lines), { attempts: 1, backoffMs: 1 }, metrics, { max: 5, maxAgeMs: 60_000 });
    await transport.subscribe(['work'], async () => { throw new PoisonMessageError('bad'); });
    for (let i = 0; i < 12; i++) await transport.publish({ topic: 'work', key: `m${i}`, value: '{}', headers: {} });
    await waitFor(() => dropped.length === 7, 5_000, '7 drops');
    expect(transport.undelivered('dlq').map((m) => m.key)).to.deep.equal(['m7', 'm8', 'm9', 'm10', 'm11']);
    expect(dropped.reduce((a, b) => a + b, 0)).to.equal(7);
    expect(lines.filter((l) => l.msg.startsWith('dead letters dropped')).map((l) => l.meta)).to.have.length(7)
      .and.to.deep.include({ topic: 'dlq', dropped: 1, kept: 5, max: 5, maxAgeMs: 60_000 });
    await transport.close();
  });

  it('drops dead letters older than the age bound when the next one arrives', async () => {
    let clock = 1_000_000;
    const transport = new MemoryTransport(TOPICS, recordingLogger([]), { attempts: 1, backoffMs: 1 }, undefined, { max: 1_000, maxAgeMs: 50, now: () => clock });
    await transport.publish({ topic: 'dlq', key: 'old', value: '{}', headers: {} });
    clock += 30;
    await transport.publish({ topic: 'dlq', key: 'younger', value: '{}', headers: {} });
    clock += 30;
    await transport.publish({ topic: 'dlq', key: 'new', value: '{}', headers: {} });
    expect(transport.undelivered('dlq').map((m) => m.key)).to.deep.equal(['younger', 'new']);
    await transport.close();
  });

  it('never bounds an ordinary topic waiting for its subscriber', async () => {
    const transport = new MemoryTransport(TOPICS, recordingLogger([]), { attempts: 1, backoffMs: 1 }, undefined, { max: 2, maxAgeMs: 60_000 });
    for (let i = 0; i < 5; i++) await transport.publish({ topic: 'work', key: `w${i}`, value: '{}', headers: {} });
    expect(transport.undelivered('work')).to.have.length(5);
    await transport.close();
  });
});
