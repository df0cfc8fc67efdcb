// A thin client for /api/v1: JSON in and out, problem+json errors turned into
// ApiError, and every outcome reported to the connection state so the UI can
// say plainly when the server is unreachable.

import { connection } from './connection.svelte';

export const API = '/api/v1';

/** An error answered by the server (problem+json) or a failure to reach it. */
export class ApiError extends Error {
  constructor(
    message: string,
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    readonly code?: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get unreachable(): boolean {
    return this.status === 0 || this.status === 502 || this.status === 504;
  }
}

/** Called with every 401 so the app can send the user to the sign-in page. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

/** Builds a query string, leaving out empty values. */
export function query(params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function problem(res: Response): Promise<ApiError> {
  let detail = res.statusText || `HTTP ${res.status}`;
  let code: string | undefined;
  let field: string | undefined;
  try {
    const p = await res.json();
    if (p && typeof p === 'object') {
      detail = p.detail ?? p.title ?? detail;
      code = p.code;
      field = p.errors?.[0]?.field;
    }
  } catch {
    // Not JSON (a proxy's error page): keep the status text.
  }
  return new ApiError(detail, res.status, code, field);
}

/** Sends a request and decodes the JSON answer. */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(API + path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? { Accept: 'application/json' } : { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if ((e as Error)?.name === 'AbortError') throw e;
    connection.httpFailed();
    throw new ApiError('server unreachable', 0);
  }
  if (res.status === 502 || res.status === 504) {
    // A proxy in front of us could not reach the server.
    connection.httpFailed();
    throw await problem(res);
  }
  connection.httpOk();
  if (res.status === 401) {
    const err = await problem(res);
    if (!path.startsWith('/auth/login')) onUnauthorized();
    throw err;
  }
  if (!res.ok) throw await problem(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => request<T>('GET', path, undefined, signal);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body);

/** Follows `next_cursor` until the end or `max` items. */
export async function getAll<T>(
  path: string,
  params: Record<string, string | number | undefined>,
  max = 100_000,
  signal?: AbortSignal,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await get<{ items?: T[]; features?: T[]; next_cursor?: string | null }>(
      path + query({ ...params, cursor }),
      signal,
    );
    out.push(...(page.items ?? page.features ?? []));
    cursor = page.next_cursor ?? undefined;
  } while (cursor && out.length < max);
  return out;
}
