import type { IncomingMessage } from 'node:http';
import { ValidationError } from '../engine/errors';
import type { Orchestrator } from '../engine/orchestrator';
import type { SagaSnapshot, SagaStatus } from '../engine/saga';
import { HttpError, readJson, sendJson, type HttpRoute } from '../http/server';
import { timelineOf } from './timeline';

/** What the console asks of the engine (the Orchestrator; a narrower type keeps the API testable). */
export type ConsoleEngine = Pick<Orchestrator,
  'listSagas' | 'getSaga' | 'sagaNotFound' | 'describeSaga' | 'leftAlone' | 'listFacades' | 'countSagas' | 'cancelSaga' | 'retryCompensation' | 'sendEvent'>;

export const SAGA_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPLETED', 'COMPENSATING', 'COMPENSATED', 'COMPENSATION_FAILED'];
const MAX_PAGE = 200;
/** A request id is 1–128 of [A-Za-z0-9._:-] (README): anything else in the path matches no route. */
const ID = '([A-Za-z0-9._:-]{1,128})';

type Handler = (req: IncomingMessage, url: URL, id: string) => Promise<unknown>;

/**
 * The console's JSON API over the engine, under /api. Query and body fields are named as in
 * ListSagas and SendEvent (status, created_from, page_token, payload, ...); a bad one is 400
 * naming it, and an engine error gets its status from httpFailureOf (the HTTP server calls it).
 */
export function apiRoutes(engine: ConsoleEngine): HttpRoute[] {
  const route = (method: 'GET' | 'POST', path: string | RegExp, handler: Handler): HttpRoute => ({
    method,
    path,
    // A failure is thrown to the HTTP server, which answers it with httpFailureOf's status.
    async handle(req, res, match) {
      if (method === 'POST') checkSameOrigin(req);
      sendJson(res, 200, await handler(req, match.url, match.params[0] ?? ''));
    },
  });
  const detail = (saga: SagaSnapshot) => ({
    saga,
    graph: engine.describeSaga(saga),
    leftAlone: engine.leftAlone(saga),
    timeline: timelineOf(saga.history),
  });
  const load = async (id: string) => {
    const saga = await engine.getSaga(id);
    if (!saga) throw engine.sagaNotFound(id);
    return saga;
  };
  return [
    route('GET', '/api/sagas', async (_req, url) => {
      const page = await engine.listSagas(filterOf(url.searchParams));
      return { sagas: page.sagas.map(({ history: _h, ...s }) => ({ ...s, leftAlone: engine.leftAlone(s) })), nextPageToken: page.nextPageToken };
    }),
    route('GET', new RegExp(`^/api/sagas/${ID}$`), async (_req, _url, id) => detail(await load(id))),
    route('POST', new RegExp(`^/api/sagas/${ID}/cancel$`), async (_req, _url, id) => detail(await engine.cancelSaga(id))),
    route('POST', new RegExp(`^/api/sagas/${ID}/retry-compensation$`), async (_req, _url, id) => detail(await engine.retryCompensation(id))),
    route('POST', new RegExp(`^/api/sagas/${ID}/events$`), async (req, _url, id) => {
      const { event, payload, idempotencyKey } = eventOf(await readJson(req));
      await engine.sendEvent(id, event, payload, idempotencyKey);
      return detail(await load(id));
    }),
    route('GET', '/api/facades', async (_req, url) => {
      // counts=false: the names only (the list's facade filter), without a scan of every saga.
      const counted = url.searchParams.get('counts') !== 'false';
      const [facades, counts] = await Promise.all([engine.listFacades(), counted ? engine.countSagas() : undefined]);
      if (!counts) return { facades };
      return {
        facades: facades.map((f) => ({
          ...f,
          counts: Object.fromEntries(SAGA_STATUSES.map((s) => [s, counts.find((c) => c.facade === f.name && c.version === f.version && c.status === s)?.sagas ?? 0])),
        })),
      };
    }),
  ];
}

/**
 * The actions change sagas and the API has no login of its own: a page of another origin must
 * not be able to post to it from an operator's browser. A JSON content type makes a cross-origin
 * form impossible without a CORS preflight (never granted here), and an Origin, when the client
 * sends one (browsers do on every POST), must be this very host: the Host header, which the HTTP
 * server has already checked against the hosts the console answers (a rebound DNS name is not one).
 */
function checkSameOrigin(req: IncomingMessage): void {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new HttpError(415, 'content-type: must be application/json');
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = (req.headers.host ?? '').toLowerCase();
  if (origin !== 'null' && URL.canParse(origin) && /^https?:$/.test(new URL(origin).protocol) && new URL(origin).host === host) return;
  throw new HttpError(403, `origin: ${origin} is not this console (${req.headers.host ?? 'no host'})`);
}

function timestamp(params: URLSearchParams, field: string): string | undefined {
  const value = params.get(field);
  if (!value) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new ValidationError(field, `${JSON.stringify(value)} is not a date and time (ISO 8601, e.g. 2026-12-01T10:00:00Z)`);
  return new Date(t).toISOString();
}

export function filterOf(params: URLSearchParams) {
  const status = params.get('status') || undefined;
  if (status && !SAGA_STATUSES.includes(status as SagaStatus)) throw new ValidationError('status', `unknown status ${status}: one of ${SAGA_STATUSES.join(', ')}`);
  const size = params.get('page_size');
  const pageSize = size ? Number(size) : 20;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE) throw new ValidationError('page_size', `must be a whole number from 1 to ${MAX_PAGE}`);
  return {
    facade: params.get('facade') || undefined,
    status: status as SagaStatus | undefined,
    createdFrom: timestamp(params, 'created_from'),
    createdTo: timestamp(params, 'created_to'),
    pageSize,
    pageToken: params.get('page_token') || undefined,
  };
}

export function eventOf(body: unknown): { event: string; payload: Record<string, unknown>; idempotencyKey?: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body', 'must be a JSON object');
  const { event, payload = {}, idempotency_key: key } = body as Record<string, unknown>;
  if (typeof event !== 'string' || event.trim() === '') throw new ValidationError('event', 'required: the name of the event');
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new ValidationError('payload', 'must be a JSON object');
  if (key !== undefined && (typeof key !== 'string' || key === '')) throw new ValidationError('idempotency_key', 'must be a non-empty string when given');
  return { event, payload: payload as Record<string, unknown>, ...(key ? { idempotencyKey: key } : {}) };
}
