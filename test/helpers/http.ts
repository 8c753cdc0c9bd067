import http from 'node:http';
import net from 'node:net';

/** GET on the orchestrator's HTTP port: the status and the JSON body. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export interface HttpAnswer { status: number; headers: http.IncomingHttpHeaders; text: string }

/**
 * One request through node:http, which (unlike fetch) sends the Host header it is given: what a
 * browser sends for a page whose DNS name was rebound to this machine.
 */
export function httpRequest(port: number, opts: { method?: string; path: string; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * `request` written as is on a fresh connection (no client library to refuse or fix it), and the
 * status line's code of what comes back before the server closes it; rejects if nothing does.
 */
export function rawHttp(port: number, request: string | Buffer): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    // A server that answers before reading all of a large request resets the connection: the answer still counts.
    let failure: Error | undefined;
    socket.on('error', (err) => { failure = err; });
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (m) resolve({ status: Number(m[1]), head: text.split('\r\n\r\n')[0] });
      else reject(new Error(`no HTTP answer before the connection closed (${chunks.length ? JSON.stringify(text.slice(0, 200)) : 'nothing received'}${failure ? `; ${failure.message}` : ''})`));
    });
    socket.end(request);
  });
}
