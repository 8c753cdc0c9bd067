// The console's JSON API (src/console/api.ts). A failure carries the server's message, code and field.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
    this.field = body?.field;
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: { accept: 'application/json' } };
  if (method !== 'GET') {
    // The server refuses actions without a JSON body type (no cross-site form can send one).
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const sagaPath = (id) => `/api/sagas/${encodeURIComponent(id)}`;
