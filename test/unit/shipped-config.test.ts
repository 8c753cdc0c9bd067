import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/load';
import { DEFAULT_ENGINE_OPTIONS } from '../../src/engine/options';
import { backoffMs, DEFAULT_COMPENSATION, DEFAULT_RETRY, type RetryPolicy } from '../../src/engine/retry';
import { loadShipped, shippedConfigs } from '../helpers/shipped-config';

/**
 * The retry budgets users get are the ones the README documents: a shipped app.yaml that set
 * smaller ones (3 step attempts 100 ms apart, 5 compensation attempts 200 ms apart, about 6 s in
 * all) turned a 10 s upstream outage into COMPENSATION_FAILED sagas while every test, running its
 * own config, passed.
 */

const README = readFileSync(path.resolve(__dirname, '..', '..', '..', 'README.md'), 'utf8');

/** The README's configuration table row for `key`, e.g. `saga.retry.*`. */
function readmeRow(key: string): string {
  const row = README.split('\n').find((l) => l.startsWith(`| \`${key}\``));
  if (row === undefined) throw new Error(`README: no configuration row for ${key}`);
  return row;
}

/** The policy a README row documents: "`maxAttempts` 10, `initialBackoffMs` 200, ...". */
function documentedPolicy(key: string): RetryPolicy {
  const fields = Object.fromEntries([...readmeRow(key).matchAll(/`(\w+)` ([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
  expect(Object.keys(fields), `README row ${key}`).to.have.members(['maxAttempts', 'initialBackoffMs', 'maxBackoffMs', 'multiplier', 'jitter']);
  return fields as unknown as RetryPolicy;
}

/** The waits between a policy's attempts, in all; `random` 0 puts the jitter at its shortest. */
function totalBackoffMs(policy: RetryPolicy, random: () => number): number {
  let total = 0;
  for (let attempt = 1; attempt < policy.maxAttempts; attempt++) total += backoffMs(policy, attempt, random);
  return total;
}

const DOCUMENTED = { retry: documentedPolicy('saga.retry.*'), compensation: documentedPolicy('saga.compensation.*') };
/** The outage measured against the old shipped budgets (the order service restarted on its own state). */
const OUTAGE_MS = 10_000;

describe('shipped configs carry the documented retry and compensation budgets', () => {
  it('the README\'s table, the config schema\'s defaults and the engine\'s defaults agree', () => {
    const emptyFile = path.join(mkdtempSync(path.join(tmpdir(), 'och-config-')), 'app.yaml');
    writeFileSync(emptyFile, '');
    const empty = loadConfig(emptyFile, {});
    for (const kind of ['retry', 'compensation'] as const) {
      expect(empty.saga[kind], `schema default saga.${kind}`).to.deep.equal(DOCUMENTED[kind]);
      expect(DEFAULT_ENGINE_OPTIONS[kind], `engine default ${kind}`).to.deep.equal(DOCUMENTED[kind]);
    }
    expect(DEFAULT_RETRY).to.deep.equal(DOCUMENTED.retry);
    expect(DEFAULT_COMPENSATION).to.deep.equal(DOCUMENTED.compensation);
  });

  it('the README\'s "about …" totals are what the documented policies add up to (jitter at its mean)', () => {
    const mean = () => 0.5;
    expect(readmeRow('saga.retry.*')).to.contain(`about ${Math.round(totalBackoffMs(DOCUMENTED.retry, mean) / 1_000)} s`);
    expect(readmeRow('saga.compensation.*')).to.contain(`about ${Math.round(totalBackoffMs(DOCUMENTED.compensation, mean) / 60_000)} min`);
  });

  for (const { name, file } of shippedConfigs()) {
    it(`${name}: saga.retry and saga.compensation are the documented ones`, () => {
      const { saga } = loadShipped(file);
      expect({ retry: saga.retry, compensation: saga.compensation }).to.deep.equal(DOCUMENTED);
    });

    it(`${name}: a ${OUTAGE_MS / 1_000} s upstream outage fits in the step retries and in the compensation's, jitter at its shortest`, () => {
      const { saga } = loadShipped(file);
      const shortest = () => 0;
      // A step that keeps failing while its upstream is down is compensated once its retries run out,
      // and its compensation calls the same upstream: each budget alone must outlast the outage.
      expect(totalBackoffMs(saga.retry, shortest), 'saga.retry: ms of backoff in all').to.be.greaterThan(OUTAGE_MS);
      expect(totalBackoffMs(saga.compensation, shortest), 'saga.compensation: ms of backoff in all').to.be.greaterThan(OUTAGE_MS);
    });
  }
});
