import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { HttpError, type HttpRoute } from '../http/server';

/** src/console/static at the repository root (this file runs from dist/src/console/, which has only compiled TS). */
export const STATIC_DIR = path.resolve(__dirname, '..', '..', '..', 'src', 'console', 'static');

/** Files served from node_modules under /console/vendor/: nothing comes from a CDN, so the console works offline. */
const VENDOR: Readonly<Record<string, string>> = {
  'mermaid.min.js': require.resolve('mermaid/dist/mermaid.min.js'),
};

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const gzipAsync = promisify(gzip);

interface Asset { type: string; body: Buffer; gzip: Buffer; etag: string }

/**
 * The console's page and its assets. Each file is read and compressed once (mermaid's bundle is
 * 3.5 MB, 1 MB gzipped) and answered with an ETag, so that a reload costs a 304.
 */
export function staticRoutes(): HttpRoute[] {
  const cache = new Map<string, Promise<Asset>>();
  const asset = (file: string) => {
    let a = cache.get(file);
    if (!a) {
      a = load(file);
      cache.set(file, a);
      a.catch(() => cache.delete(file));
    }
    return a;
  };
  const serve = (file: () => string): HttpRoute['handle'] => async (req, res) => {
    const a = await asset(file());
    const headers = { 'content-type': a.type, etag: a.etag, 'cache-control': 'no-cache', vary: 'accept-encoding' };
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? a.gzip : a.body;
    res.writeHead(200, { ...headers, 'content-length': body.length, ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  return [
    { method: 'GET', path: '/', handle: serve(() => path.join(STATIC_DIR, 'index.html')) },
    {
      method: 'GET',
      path: /^\/console\/vendor\/([^/]+)$/,
      handle: (req, res, m) => serve(() => {
        const file = VENDOR[m.params[0]];
        if (!file) throw new HttpError(404, `no vendor file ${m.params[0]}`);
        return file;
      })(req, res, m),
    },
    {
      method: 'GET',
      path: /^\/console\/((?:[a-z0-9-]+\/)*[a-z0-9-]+\.(?:js|css|svg|html))$/,
      handle: (req, res, m) => serve(() => path.join(STATIC_DIR, m.params[0]))(req, res, m),
    },
  ];
}

async function load(file: string): Promise<Asset> {
  const type = TYPES[path.extname(file)];
  if (!type) throw new HttpError(404, `no such file ${path.basename(file)}`);
  const body = await readFile(file).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ENOENT' ? new HttpError(404, `no such file ${path.basename(file)}`) : err;
  });
  // On the thread pool: compressing mermaid's bundle takes about a second that sagas must not wait for.
  return { type, body, gzip: await gzipAsync(body), etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
}
