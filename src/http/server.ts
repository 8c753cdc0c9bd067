import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../engine/logger';

/** One route: `path` is exact, or a RegExp whose groups are handed to the handler. */
export interface HttpRoute {
  method: 'GET' | 'POST' | 'HEAD';
  path: string | RegExp;
  handle(req: IncomingMessage, res: ServerResponse, match: { params: string[]; url: URL }): Promise<void> | void;
}

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
 * The HTTP server beside the gRPC one: probes, metrics, the console. A handler's HttpError is
 * answered with its status; anything else with 500 (and logged), never a crash.
 */
export async function startHttpServer(opts: { host: string; port: number; routes: readonly HttpRoute[]; log: Logger }): Promise<HttpServerHandle> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    let allowed = false;
    for (const route of opts.routes) {
      const params = matchPath(route.path, url.pathname);
      if (!params) continue;
      allowed = true;
      if (route.method !== method) continue;
      Promise.resolve()
        .then(() => route.handle(req, res, { params, url }))
        .catch((err: unknown) => {
          const status = err instanceof HttpError ? err.status : 500;
          if (status === 500) opts.log.error('HTTP handler failed', { path: url.pathname, error: err instanceof Error ? err.message : String(err) });
          if (!res.headersSent) sendJson(res, status, { error: err instanceof Error ? err.message : String(err) });
          else res.end();
        });
      return;
    }
    if (allowed) sendJson(res, 405, { error: `${req.method} not allowed on ${url.pathname}` });
    else sendJson(res, 404, { error: `no route ${url.pathname}` });
  });
  // Probes and scrapes come every few seconds: keep-alive sockets must not hold shutdown up.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  opts.log.info('HTTP server listening', { address: `${opts.host}:${port}`, port });
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

function matchPath(path: string | RegExp, pathname: string): string[] | undefined {
  if (typeof path === 'string') return path === pathname ? [] : undefined;
  const m = path.exec(pathname);
  return m ? m.slice(1).map((p) => decodeURIComponent(p)) : undefined;
}
