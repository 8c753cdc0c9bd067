import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../engine/logger';

/** One route: `path` is exact, or a RegExp whose groups are handed to the handler (percent-decoded). */
export interface HttpRoute {
  method: 'GET' | 'POST' | 'HEAD';
  path: string | RegExp;
  /**
   * Answered whatever the Host header says: the probes and /metrics, which kubelet and Prometheus
   * call by the pod's IP. Every other route answers only the hosts the server is configured for.
   */
  anyHost?: boolean;
  handle(req: IncomingMessage, res: ServerResponse, match: { params: string[]; url: URL }): Promise<void> | void;
}

/** What an error thrown while answering a request becomes: its status and JSON body. */
export type FailureOf = (err: unknown) => { status: number; body: { error: string } };

export interface HttpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** The request body as JSON (at most 1 MiB); throws HttpError 400 naming what is wrong. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 1_048_576) throw new HttpError(413, 'request body over 1 MiB');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`);
  }
}

/** Answered with its status and `{ error: message }`. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The HTTP server beside the gRPC one: probes, metrics, the console. Whatever a request makes
 * throw (routing, a handler, a Host it must not answer) is answered with the status `failureOf`
 * gives it (5xx logged), never left to crash the process: one request must not stop every saga
 * this instance runs. `hostRefused` names why a Host header is refused (undefined: accepted).
 */
export async function startHttpServer(opts: {
  host: string; port: number; routes: readonly HttpRoute[]; log: Logger; failureOf: FailureOf; hostRefused: (host: string | undefined) => string | undefined;
}): Promise<HttpServerHandle> {
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    let failure: ReturnType<FailureOf>;
    try {
      failure = opts.failureOf(err);
    } catch (mapping) {
      failure = { status: 500, body: { error: `internal error: ${String(mapping)}` } };
    }
    const { status, body } = failure;
    if (status >= 500) opts.log.error('HTTP request failed', { method: req.method, path: req.url?.slice(0, 200), status, error: body.error });
    if (!res.headersSent) sendJson(res, status, body);
    else res.end();
  };
  const server = createServer((req, res) => {
    Promise.resolve()
      .then(() => route(opts, req, res))
      .catch((err: unknown) => fail(req, res, err))
      // Not even answering may reject unhandled: Node would end the process for it.
      .catch((err: unknown) => {
        opts.log.error('HTTP request could not be answered', { error: String(err) });
        res.destroy();
      });
  });
  // Probes and scrapes come every few seconds: keep-alive sockets must not hold shutdown up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info('HTTP server listening', { address: `${opts.host}:${port}`, port, console: consoleUrl(opts.host, port) });
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function route(opts: { routes: readonly HttpRoute[]; hostRefused: (host: string | undefined) => string | undefined }, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = requestUrl(req.url ?? '/');
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  let allowed = false;
  for (const route of opts.routes) {
    const params = matchPath(route.path, url.pathname);
    if (!params) continue;
    allowed = true;
    if (route.method !== method) continue;
    if (!route.anyHost) {
      const refused = opts.hostRefused(req.headers.host);
      // 421 Misdirected Request: this server is not the one that name is meant to reach.
      if (refused) throw new HttpError(421, `host: ${req.headers.host || '(none)'} is ${refused}`);
    }
    return route.handle(req, res, { params, url });
  }
  if (allowed) throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
  throw new HttpError(404, `no route ${url.pathname}`);
}

/**
 * The request target as a URL. Origin-form ("/path") is appended to a fixed origin rather than
 * resolved against it: "//host/path" is a path here, not a URL naming another host.
 */
function requestUrl(target: string): URL {
  const text = target.startsWith('/') ? `http://localhost${target}` : target;
  if (!URL.canParse(text)) throw new HttpError(400, `request target: not a URL: ${target.slice(0, 200)}`);
  return new URL(text);
}

function matchPath(path: string | RegExp, pathname: string): string[] | undefined {
  if (typeof path === 'string') return path === pathname ? [] : undefined;
  const m = path.exec(pathname);
  return m ? m.slice(1).map((p) => decodePathPart(p)) : undefined;
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `path: malformed percent-encoding in ${JSON.stringify(part.slice(0, 200))}`);
  }
}

/** Where a browser on this machine opens the console: the listen address, or localhost when bound to every address. */
export function consoleUrl(host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' || host === '' ? 'localhost' : host;
  return `http://${name.includes(':') ? `[${name}]` : name}:${port}/`;
}
