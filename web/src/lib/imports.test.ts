import { afterEach, describe, expect, test, vi } from 'vitest';
import { canAcceptValid, canImport, contentTypeFor, formatBytes, jobFraction, pageOf, uploadImport, XLSX_TYPE, type ImportJob, type ImportReport } from './imports';
import { ApiError } from './api';

const progress = (over: Partial<ImportJob['progress']>): Pick<ImportJob, 'status' | 'progress'> => ({
  status: 'running',
  progress: { phase: 'reading', rows_read: 0, rows_total: 0, to_write: 0, written: 0, ...over },
});

function report(over: Partial<ImportReport> = {}): ImportReport {
  return {
    kind: 'indicator_values',
    format: 'csv',
    outcome: 'refused',
    rows: 10,
    empty_rows: 0,
    valid: 8,
    invalid: 2,
    unchanged: 0,
    written: 0,
    dry_run: false,
    accept_valid: false,
    errors: [
      { row: 3, column: 'Giá trị', cell: 'D3', reason: 'not a number' },
      { row: 7, column: 'Mã chỉ tiêu', cell: 'A7', reason: 'unknown indicator' },
    ],
    errors_omitted: 0,
    warnings: [],
    ...over,
  };
}

describe('job progress', () => {
  test('reading is the first half, writing the second, finished is whole', () => {
    expect(jobFraction(progress({ phase: 'queued' }))).toBe(0);
    expect(jobFraction(progress({ phase: 'reading', rows_read: 250, rows_total: 1000 }))).toBe(0.125);
    expect(jobFraction(progress({ phase: 'comparing' }))).toBe(0.5);
    expect(jobFraction(progress({ phase: 'writing', written: 300, to_write: 400 }))).toBe(0.875);
    expect(jobFraction({ ...progress({ phase: 'writing' }), status: 'done' })).toBe(1);
  });

  test('an estimate smaller than the rows read, or nothing to write, never goes past its half or divides by zero', () => {
    expect(jobFraction(progress({ phase: 'reading', rows_read: 1200, rows_total: 1000 }))).toBe(0.5);
    expect(jobFraction(progress({ phase: 'reading', rows_read: 5, rows_total: 0 }))).toBe(0);
    expect(jobFraction(progress({ phase: 'writing', written: 0, to_write: 0 }))).toBe(0.5);
  });
});

describe('importing the valid rows only', () => {
  test('offered when a refused file has both bad and valid rows', () => {
    expect(canAcceptValid(report())).toBe(true);
  });

  test('not offered for a problem of the whole file, a file without valid rows, a written or dry-run file, or a repeat', () => {
    expect(canAcceptValid(report({ errors: [{ reason: 'missing column "value"' }] }))).toBe(false);
    expect(canAcceptValid(report({ valid: 0, invalid: 10 }))).toBe(false);
    expect(canAcceptValid(report({ outcome: 'written', invalid: 0, errors: [] }))).toBe(false);
    expect(canAcceptValid(report({ dry_run: true }))).toBe(false);
    expect(canAcceptValid(report({ accept_valid: true, outcome: 'written' }))).toBe(false);
    expect(canAcceptValid(undefined)).toBe(false);
  });
});

describe('report paging', () => {
  const rows = Array.from({ length: 123 }, (_, i) => i + 1);

  test('pages of 50: the last one is short, and the labels count from 1', () => {
    expect(pageOf(rows, 0, 50)).toMatchObject({ page: 0, pages: 3, from: 1, to: 50 });
    const last = pageOf(rows, 2, 50);
    expect(last.items).toEqual([101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122, 123]);
    expect(last).toMatchObject({ from: 101, to: 123 });
  });

  test('a page out of range is clamped; an empty list is one empty page', () => {
    expect(pageOf(rows, 9, 50).page).toBe(2);
    expect(pageOf(rows, -3, 50).page).toBe(0);
    expect(pageOf([], 0, 50)).toEqual({ items: [], page: 0, pages: 1, from: 0, to: 0 });
  });
});

describe('files and roles', () => {
  test('the content type comes from the name first', () => {
    expect(contentTypeFor({ name: 'chi-tieu-2024-05.CSV', type: '' })).toBe('text/csv');
    expect(contentTypeFor({ name: 'so-lieu.xlsx', type: 'application/octet-stream' })).toBe(XLSX_TYPE);
    expect(contentTypeFor({ name: 'blob', type: XLSX_TYPE })).toBe(XLSX_TYPE);
    expect(contentTypeFor({ name: 'bao-cao.xls', type: 'application/vnd.ms-excel' })).toBeNull();
    expect(contentTypeFor({ name: 'anh.png', type: 'image/png' })).toBeNull();
  });

  test('admins and officers may import, as the server requires', () => {
    expect(canImport('admin')).toBe(true);
    expect(canImport('officer')).toBe(true);
    expect(canImport('operator')).toBe(false);
    expect(canImport('viewer')).toBe(false);
    expect(canImport(undefined)).toBe(false);
  });

  test('sizes for people', () => {
    expect(formatBytes('en', 900)).toBe('900 B');
    expect(formatBytes('vi', 3.5 * 1024 * 1024)).toBe('3,5 MB');
    expect(formatBytes('en', 256 * 1024 * 1024)).toBe('256 MB');
  });
});

describe('upload', () => {
  class FakeXhr {
    static last: FakeXhr;
    method = '';
    url = '';
    headers: Record<string, string> = {};
    body: unknown;
    status = 0;
    responseText = '';
    withCredentials = false;
    upload: { onprogress: ((e: { lengthComputable: boolean; loaded: number; total: number }) => void) | null } = { onprogress: null };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onabort: (() => void) | null = null;
    constructor() {
      FakeXhr.last = this;
    }
    open(m: string, u: string) {
      this.method = m;
      this.url = u;
    }
    setRequestHeader(k: string, v: string) {
      this.headers[k] = v;
    }
    send(b: unknown) {
      this.body = b;
    }
    abort() {
      this.onabort?.();
    }
    answer(status: number, body: unknown) {
      this.status = status;
      this.responseText = JSON.stringify(body);
      this.onload?.();
    }
  }
  afterEach(() => vi.unstubAllGlobals());

  test('posts the file with its kind, accept_valid and content type, reports progress, resolves with the job', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const file = Object.assign(new Blob(['a,b\n']), { name: 'Chỉ tiêu T5.csv' });
    const seen: number[] = [];
    const { done } = uploadImport(file, { kind: 'indicator_values', accept_valid: true }, (f) => seen.push(f));
    const x = FakeXhr.last;
    expect(x.method).toBe('POST');
    expect(x.url).toBe('/api/v1/imports?kind=indicator_values&accept_valid=true&filename=Ch%E1%BB%89+ti%C3%AAu+T5.csv');
    expect(x.headers['Content-Type']).toBe('text/csv');
    expect(x.body).toBe(file);
    x.upload.onprogress?.({ lengthComputable: true, loaded: 50, total: 200 });
    x.answer(202, { id: 'j1', status: 'running' });
    await expect(done).resolves.toMatchObject({ id: 'j1' });
    expect(seen).toEqual([0.25, 1]);
  });

  test('a refusal becomes an ApiError with the server’s detail, status and field', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const { done } = uploadImport(Object.assign(new Blob(['']), { name: 'x.csv' }), { kind: 'entities' }, () => {});
    expect(FakeXhr.last.url).toBe('/api/v1/imports?kind=entities&filename=x.csv');
    FakeXhr.last.answer(403, { detail: 'needs role admin or officer', code: 'forbidden', errors: [{ field: 'role' }] });
    const err = await done.catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ message: 'needs role admin or officer', status: 403, code: 'forbidden', field: 'role' });
  });

  test('a network failure says the server is unreachable', async () => {
    vi.stubGlobal('XMLHttpRequest', FakeXhr);
    const { done } = uploadImport(Object.assign(new Blob(['']), { name: 'x.xlsx' }), { kind: 'entities' }, () => {});
    expect(FakeXhr.last.headers['Content-Type']).toBe(XLSX_TYPE);
    FakeXhr.last.onerror?.();
    await expect(done).rejects.toMatchObject({ status: 0 });
  });
});
