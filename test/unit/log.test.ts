import { expect } from 'chai';
import { createLogger } from '../../src/log';

/** The lines written to stdout while `fn` runs. */
function stdoutOf(fn: () => void): string[] {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string | Uint8Array) => { lines.push(String(chunk).trim()); return true; });
  try {
    fn();
  } finally {
    process.stdout.write = write;
  }
  return lines;
}

describe('createLogger', () => {
  it('writes enabled levels as JSON lines with the pod id and the child meta, and nothing for the others', () => {
    const log = createLogger({ level: 'warn', podId: 'pod-1' });
    const lines = stdoutOf(() => {
      const child = log.child({ requestId: 'r1' }).child({ node: 'a' });
      child.debug('not this');
      child.info('nor this');
      child.warn('this', { attempt: 2 });
      log.error('and this');
    });
    expect(lines).to.have.length(2);
    const [warn, error] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(warn).to.include({ level: 'warn', message: 'this', attempt: 2, requestId: 'r1', node: 'a', podId: 'pod-1' });
    expect(error).to.include({ level: 'error', message: 'and this', podId: 'pod-1' });
  });
});
