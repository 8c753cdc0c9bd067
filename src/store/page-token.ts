import { ValidationError } from '../engine/errors';

/** Keyset paging: the token names the last saga of the page (createdAt, requestId). */
export function encodePageToken(createdAt: string, requestId: string): string {
  return Buffer.from(JSON.stringify([createdAt, requestId])).toString('base64url');
}

export function decodePageToken(token: string): { createdAt: string; requestId: string } {
  try {
    const [createdAt, requestId] = JSON.parse(Buffer.from(token, 'base64url').toString()) as unknown[];
    if (typeof createdAt === 'string' && typeof requestId === 'string') return { createdAt, requestId };
  } catch {
    // fall through to the error below
  }
  throw new ValidationError('page_token', 'not a token from a previous page');
}
