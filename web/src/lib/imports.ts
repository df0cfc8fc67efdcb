// The import screen's logic: the job and report shapes of /api/v1/imports,
// how far a job is, paging of the bad-row table, and the upload itself
// (XMLHttpRequest, since fetch cannot report upload progress).

import { API, ApiError } from './api';
import { connection } from './connection.svelte';

export type ImportKind = 'indicator_values' | 'entities';
export const IMPORT_KINDS: ImportKind[] = ['indicator_values', 'entities'];
export type Phase = 'queued' | 'reading' | 'comparing' | 'writing' | 'done';
export type Outcome = 'written' | 'refused' | 'dry_run' | 'failed';

export interface RowError {
  row?: number;
  column?: string;
  cell?: string;
  reason: string;
}

export interface ImportReport {
  kind: ImportKind;
  format: 'csv' | 'xlsx';
  outcome: Outcome;
  rows: number;
  empty_rows: number;
  valid: number;
  invalid: number;
  unchanged: number;
  written: number;
  dry_run: boolean;
  accept_valid: boolean;
  errors: RowError[];
  errors_omitted: number;
  warnings: string[];
  failure?: string;
}

export interface ImportJob {
  id: string;
  kind: ImportKind;
  format: 'csv' | 'xlsx';
  submitted_by: string;
  file_name?: string;
  status: 'running' | 'done' | 'failed';
  created_at: string;
  finished_at?: string;
  progress: { phase: Phase; rows_read: number; rows_total: number; to_write: number; written: number };
  report?: ImportReport;
  error?: string;
}

/** Roles the server lets import (panorama-api `Importer`): admins and agency officers. */
export const IMPORT_ROLES = ['admin', 'officer'];
export const canImport = (role: string | undefined | null) => IMPORT_ROLES.includes(role ?? '');

export const XLSX_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** The content type to send for a picked file, from its name first (browsers often give none for CSV on Windows). */
export function contentTypeFor(file: { name: string; type?: string }): string | null {
  const n = file.name.toLowerCase();
  if (n.endsWith('.csv') || n.endsWith('.txt') || n.endsWith('.tsv')) return 'text/csv';
  if (n.endsWith('.xlsx')) return XLSX_TYPE;
  if (file.type === 'text/csv' || file.type === XLSX_TYPE) return file.type;
  return null;
}

/** Largest file the server takes (panorama-api `MAX_IMPORT_BYTES`). */
export const MAX_IMPORT_BYTES = 256 * 1024 * 1024;

/**
 * How far a job is, 0…1, and which counter to show. Reading is the first
 * half (rows checked of the rows in the file), writing the second (rows
 * written of the rows to write); a finished job is 1.
 */
export function jobFraction(j: Pick<ImportJob, 'status' | 'progress'>): number {
  if (j.status !== 'running') return 1;
  const p = j.progress;
  const part = (a: number, b: number) => (b > 0 ? Math.min(1, a / b) : 0);
  switch (p.phase) {
    case 'queued':
      return 0;
    case 'reading':
      return 0.5 * part(p.rows_read, p.rows_total);
    case 'comparing':
      return 0.5;
    case 'writing':
      return 0.5 + 0.5 * part(p.written, p.to_write);
    default:
      return 1;
  }
}

/** Whether the report found bad rows that could be left out (file-wide problems have no row and refuse the file). */
export function canAcceptValid(r: ImportReport | undefined): boolean {
  if (!r || r.outcome !== 'refused' || r.dry_run || r.accept_valid) return false;
  const fileWide = r.errors.some((e) => e.row === undefined || e.row === null);
  return !fileWide && r.invalid > 0 && r.valid > 0;
}

/** One page of a long list; pages count from 0 and are clamped into range. */
export function pageOf<T>(items: T[], page: number, size: number): { items: T[]; page: number; pages: number; from: number; to: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const p = Math.min(Math.max(0, Math.floor(page)), pages - 1);
  const from = p * size;
  const slice = items.slice(from, from + size);
  return { items: slice, page: p, pages, from: slice.length ? from + 1 : 0, to: from + slice.length };
}

/** Sends `file` to POST /imports and reports upload progress (0…1); resolves with the accepted job. */
export function uploadImport(
  file: Blob & { name: string },
  params: { kind: ImportKind; accept_valid?: boolean },
  onProgress: (fraction: number) => void,
): { done: Promise<ImportJob>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const q = new URLSearchParams({ kind: params.kind });
  if (params.accept_valid) q.set('accept_valid', 'true');
  if (file.name) q.set('filename', file.name.slice(0, 255));
  const done = new Promise<ImportJob>((resolve, reject) => {
    xhr.open('POST', `${API}/imports?${q}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('Content-Type', contentTypeFor(file) ?? 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onerror = () => {
      connection.httpFailed();
      reject(new ApiError('server unreachable', 0));
    };
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    xhr.onload = () => {
      connection.httpOk();
      let body: Record<string, unknown> | null = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 202 || xhr.status === 200) {
        onProgress(1);
        resolve(body as unknown as ImportJob);
        return;
      }
      const errs = (body?.errors as { field?: string }[] | undefined) ?? [];
      const detail = (body?.detail as string) ?? (body?.title as string) ?? `HTTP ${xhr.status}`;
      reject(new ApiError(detail, xhr.status, body?.code as string | undefined, errs[0]?.field));
    };
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

/** A byte count for people: 12 KB, 3,4 MB. */
export function formatBytes(lang: 'vi' | 'en', n: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const digits = i === 0 || v >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(lang === 'vi' ? 'vi-VN' : 'en-GB', { maximumFractionDigits: digits }).format(v)} ${units[i]}`;
}

/** Where a bad row's problem is: "Row 5 · D5 · Giá trị" — parts that exist only. */
export function whereOf(e: RowError): { row: string; cell: string; column: string } {
  return { row: e.row === undefined || e.row === null ? '' : String(e.row), cell: e.cell ?? '', column: e.column ?? '' };
}
