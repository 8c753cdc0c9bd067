import { expect } from 'chai';
import { Batcher } from '../../src/lib/batcher';

/** A flush that records its batches and finishes when the test says so. */
function gatedFlush() {
  const batches: string[][] = [];
  const gates: Array<() => void> = [];
  const flush = async (items: string[]) => {
    batches.push(items);
    await new Promise<void>((resolve) => gates.push(resolve));
    return items.map((i) => (i.startsWith('bad') ? new Error(`refused ${i}`) : i.toUpperCase()));
  };
  return { batches, flush, release: () => gates.shift()?.() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher (group commit)', () => {
  it('flushes a lone call at once, on its own', async () => {
    const g = gatedFlush();
    const b = new Batcher(g.flush, { maxBatch: 10, maxInFlight: 1 });
    const one = b.submit('a');
    await tick();
    expect(g.batches).to.deep.equal([['a']]);
    g.release();
    expect(await one).to.equal('A');
  });

  it('groups the calls that arrive while maxInFlight flushes run, up to maxBatch', async () => {
    const g = gatedFlush();
    const b = new Batcher(g.flush, { maxBatch: 3, maxInFlight: 1 });
    const results = ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => b.submit(x));
    await tick();
    expect(g.batches).to.deep.equal([['a']]);
    g.release();
    await tick();
    expect(g.batches).to.deep.equal([['a'], ['b', 'c', 'd']]);
    g.release();
    await tick();
    g.release();
    expect(await Promise.all(results)).to.deep.equal(['A', 'B', 'C', 'D', 'E', 'F']);
    expect(g.batches).to.deep.equal([['a'], ['b', 'c', 'd'], ['e', 'f']]);
  });

  it('never puts two items with the same key in one flush', async () => {
    const g = gatedFlush();
    const b = new Batcher(g.flush, { maxBatch: 10, maxInFlight: 1, key: (s) => s[0] });
    const results = ['x1', 'y1', 'x2', 'x3', 'y2'].map((x) => b.submit(x));
    await tick();
    g.release();
    await tick();
    expect(g.batches[1]).to.deep.equal(['y1', 'x2']);
    g.release();
    await tick();
    expect(g.batches[2]).to.deep.equal(['x3', 'y2']);
    g.release();
    await Promise.all(results);
  });

  it('fails only the item whose result is an Error, and every item of a flush that throws', async () => {
    const g = gatedFlush();
    const b = new Batcher(g.flush, { maxBatch: 10, maxInFlight: 1 });
    const first = b.submit('a');
    const good = b.submit('b');
    const bad = b.submit('bad1');
    g.release();
    await tick();
    g.release();
    expect(await first).to.equal('A');
    expect(await good).to.equal('B');
    await bad.then(() => expect.fail('should fail'), (err: Error) => expect(err.message).to.equal('refused bad1'));

    const broken = new Batcher(async () => { throw new Error('connection lost'); }, { maxBatch: 10, maxInFlight: 1 });
    const failures = await Promise.allSettled([broken.submit('a'), broken.submit('b')]);
    expect(failures.map((f) => f.status === 'rejected' && (f.reason as Error).message)).to.deep.equal(['connection lost', 'connection lost']);
  });

  it('keeps a flush under maxWeight (a broker refuses a whole batch over its size limit); a heavier item goes alone, in order', async () => {
    const g = gatedFlush();
    const b = new Batcher(g.flush, { maxBatch: 10, maxInFlight: 1, weight: (s: string) => s.length, maxWeight: 6 });
    const all = ['first', 'aa', 'bb', 'cc', 'dddddddd', 'e'].map((s) => b.submit(s));
    await tick();
    for (let i = 0; i < 4; i++) {
      g.release();
      await tick();
      await tick();
    }
    expect(g.batches).to.deep.equal([['first'], ['aa', 'bb', 'cc'], ['dddddddd'], ['e']]);
    expect(await Promise.all(all)).to.deep.equal(['FIRST', 'AA', 'BB', 'CC', 'DDDDDDDD', 'E']);
  });
});
