import { expect } from 'chai';
import { httpGet, rawHttp } from '../helpers/http';
import { healthCheck, Stack } from '../helpers/stack';

/**
 * Requests no browser sends, at the orchestrator process's HTTP server: each is answered with a
 * 4xx (or 5xx), and the process goes on serving gRPC and HTTP. One bad request must never take
 * the sagas of a whole instance down with it.
 */
describe('HTTP server: malformed and hostile requests are answered, never fatal', function () {
  this.timeout(60_000);
  let stack: Stack;
  let port = 0;
  const exitedEarly = () => stack.orchestrator.exited.then((code) => `the orchestrator exited (${code}):\n${stack.orchestrator.lines.slice(-10).join('\n')}`);

  before(async () => {
    stack = await Stack.start({ transport: 'memory' });
    port = stack.ports.http;
  });
  after(() => stack?.stop());

  /** Sends `request` and answers its status; fails naming the exit if the process died of it. */
  async function send(request: string | Buffer): Promise<number> {
    const answer = rawHttp(port, request).then((r) => r.status, (err: Error) => err);
    const result = await Promise.race([answer, exitedEarly()]);
    if (typeof result === 'string') throw new Error(result);
    if (result instanceof Error) throw new Error(`${result.message}; the orchestrator ${stack.orchestrator.lines.length ? 'logged last:\n' + stack.orchestrator.lines.slice(-5).join('\n') : 'logged nothing'}`);
    return result;
  }
  const get = (path: string, extra = '') => send(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}Connection: close\r\n\r\n`);

  async function stillServing(): Promise<void> {
    expect(await healthCheck(stack.address), 'gRPC health').to.equal('SERVING');
    expect(await httpGet(port, '/healthz'), 'HTTP /healthz').to.deep.equal({ status: 200, body: { status: 'ok' } });
  }

  it('a lone % in a path that is percent-decoded (GET /console/vendor/%): 400, and the process serves on', async () => {
    expect(await get('/console/vendor/%')).to.equal(400);
    expect(await get('/console/vendor/%E0%A4%A')).to.equal(400);
    await stillServing();
  });

  it('bad percent-encoding in the API\'s path and query: a 4xx', async () => {
    for (const path of ['/api/sagas/%', '/api/sagas/%zz/cancel', '/api/sagas/a%ZZb', '/api/sagas?status=%', '/api/sagas?page_token=%FF%FE']) {
      expect(await get(path), path).to.be.within(400, 499);
    }
    await stillServing();
  });

  it('an absurd method, an unparsable request line, an absolute-form URL with no host, a huge URL and huge headers: a 4xx each', async () => {
    expect(await send(`BREW-COFFEE /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`), 'unknown method').to.equal(400);
    expect(await send(`PROPFIND /api/sagas HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`), 'a method no route takes').to.equal(405);
    expect(await send('\u0000\u0001 garbage\r\n\r\n'), 'not HTTP').to.equal(400);
    expect(await get('http://[/healthz'), 'an absolute URL that does not parse').to.be.within(400, 499);
    expect(await get('//evil.example/api/sagas'), 'a path that a URL parser takes for a host').to.equal(404);
    expect(await get(`/api/sagas?facade=${'a'.repeat(100_000)}`), 'a 100 kB URL').to.be.within(400, 499);
    expect(await get('/healthz', `X-Filler: ${'b'.repeat(100_000)}\r\n`), '100 kB of headers').to.be.within(400, 499);
    await stillServing();
  });

  it('a body that is not what the route reads (invalid UTF-8 and JSON, over 1 MiB): a 4xx', async () => {
    const post = (body: Buffer) => send(Buffer.concat([
      Buffer.from(`POST /api/sagas/nobody/events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`),
      body,
    ]));
    expect(await post(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'invalid UTF-8').to.equal(400);
    expect(await post(Buffer.alloc(1_100_000, 0x20)), 'over 1 MiB').to.equal(413);
    await stillServing();
  });
});
