import { expect } from 'chai';
import { BackgroundRead } from '../../src/store/postgres/gauges';
import { waitFor } from '../helpers/wait';

describe('BackgroundRead (the parked and timer gauges on Postgres)', () => {
  /** A read that returns how many times it ran, and lets each run finish when told. */
  function counting() {
    let runs = 0;
    const pending: (() => void)[] = [];
    const read = async (key: number): Promise<string> => {
      const n = ++runs;
      await new Promise<void>((resolve) => pending.push(resolve));
      return `${key}#${n}`;
    };
    return { read, runs: () => runs, finish: () => pending.splice(0).forEach((f) => f()) };
  }

  it('makes the first callers wait for one read, then serves the last result while a new one runs in the background', async () => {
    const c = counting();
    const errors: unknown[] = [];
    const cache = new BackgroundRead(c.read, 0, (err) => errors.push(err));
    const first = Promise.all([cache.get(1), cache.get(1)]);
    c.finish();
    expect(await first).to.deep.equal(['1#1', '1#1']);
    expect(c.runs()).to.equal(1);
    // Stale (an interval of 0): the last result at once, and one read started behind it.
    // Stale once older than ten times the read took (a millisecond or more): until then, no new read.
    const served: string[] = [];
    await waitFor(async () => { served.push(await cache.get(1)); return c.runs() === 2 || undefined; });
    expect(new Set(served)).to.deep.equal(new Set(['1#1']));
    expect(await cache.get(1)).to.equal('1#1');
    expect(c.runs()).to.equal(2);
    c.finish();
    expect(await waitFor(async () => (await cache.get(1)) === '1#2' || undefined)).to.equal(true);
    expect(errors).to.deep.equal([]);
  });

  it('reads again within the interval only for another key', async () => {
    const c = counting();
    const cache = new BackgroundRead(c.read, 3_600_000, () => undefined);
    const first = cache.get(1);
    c.finish();
    expect(await first).to.equal('1#1');
    expect(await cache.get(1)).to.equal('1#1');
    const other = cache.get(2);
    c.finish();
    expect(await other).to.equal('2#2');
    expect(c.runs()).to.equal(2);
  });

  it('keeps the last result when a background read fails, and reports the failure', async () => {
    let fail = false;
    let runs = 0;
    const errors: unknown[] = [];
    const cache = new BackgroundRead(async () => { runs++; if (fail) throw new Error('down'); return runs; }, 0, (err) => errors.push(err));
    expect(await cache.get(0)).to.equal(1);
    fail = true;
    expect(await cache.get(0)).to.equal(1);
    await waitFor(() => errors.length === 1);
    expect(String(errors[0])).to.include('down');
    fail = false;
    expect(await cache.get(0)).to.equal(1);
    expect(await waitFor(async () => (await cache.get(0)) === 3 || undefined)).to.equal(true);
  });
});
