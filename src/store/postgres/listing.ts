import type { QueryConfig } from 'pg';
import { ValidationError } from '../../engine/errors';
import type { SagaFilter, SagaPage } from '../../engine/store';
import { decodePageToken, encodePageToken } from '../page-token';
import { SAGA_COLUMNS, STEPS_OF_S, toSnapshot, type SagaRow } from './rows';

/** list(): newest first, keyset paging on (created_at, request_id); one more row than a page says whether another follows. */
export function listQuery(filter: SagaFilter): QueryConfig {
  const values: unknown[] = [];
  const param = (value: unknown): string => `$${values.push(value)}`;
  const where: string[] = [];
  if (filter.facade) where.push(`s.facade = ${param(filter.facade)}`);
  if (filter.status) where.push(`s.status = ${param(filter.status)}`);
  if (filter.createdFrom) where.push(`s.created_at >= ${param(timestamp(filter.createdFrom, 'created_from'))}::timestamptz`);
  if (filter.createdTo) where.push(`s.created_at < ${param(timestamp(filter.createdTo, 'created_to'))}::timestamptz`);
  if (filter.pageToken) {
    const after = decodePageToken(filter.pageToken);
    const at = timestamp(after.createdAt, 'page_token');
    where.push(`(s.created_at, s.request_id) < (${param(at)}::timestamptz, ${param(after.requestId)}::text COLLATE "C")`);
  }
  const text = `
      SELECT ${SAGA_COLUMNS}, ${STEPS_OF_S}
        FROM sagas s
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY s.created_at DESC, s.request_id DESC
       LIMIT ${param(filter.pageSize + 1)}`;
  return { text, values };
}

export function toPage(rows: SagaRow[], filter: SagaFilter, leaseTtlMs: number): SagaPage {
  const sagas = rows.slice(0, filter.pageSize).map((r) => toSnapshot(r, leaseTtlMs));
  const last = sagas[sagas.length - 1];
  return { sagas, nextPageToken: rows.length > filter.pageSize ? encodePageToken(last.createdAt, last.requestId) : undefined };
}

function timestamp(value: string, field: string): string {
  if (Number.isNaN(Date.parse(value))) throw new ValidationError(field, `not an ISO 8601 timestamp: ${value}`);
  return value;
}
