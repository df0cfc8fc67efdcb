// The Sources page and the import screen end to end, on the real binary in
// headless Chromium: a late source shows as late (and by how much), an active
// one as on time, a bad post shows up in its counts and last error, a dead
// MQTT broker shows as a connection problem; a CSV with bad rows gets a
// report naming every bad row and writes nothing, then "import the valid
// rows only" writes them and they can be read back; a viewer is told plainly
// that importing is not for their role.

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { apiCall, startServer, type Server } from './server';
import { launch, shot, signIn, watchErrors, type Session, type Page } from './browser';

let srv: Server;
let chrome: Session;
let page: Page;
let errors: string[];
const failed: string[] = [];

const IND = 'e2e-import-jobs';
const LATE = 'e2e-late-gauge';
const DEAD = 'e2e-dead-broker';
/** Rows of the test file that are bad, as a spreadsheet numbers them (header = row 1). */
const BAD_VALUE_ROW = 3;
const BAD_UNIT_ROWS = Array.from({ length: 55 }, (_, i) => 6 + i);

function csv(): string {
  const lines = ['Mã chỉ tiêu,Kỳ báo cáo,Địa bàn,Giá trị,Trạng thái,Ghi chú'];
  lines.push(`${IND},2025-01,718,1200,chính thức,`); // row 2
  lines.push(`${IND},2025-01,719,mười hai,chính thức,`); // row 3: not a number
  lines.push(`${IND},2025-02,718,1250,sơ bộ,`); // row 4
  lines.push(`${IND},2025-03,718,1300,,Sở LĐTBXH`); // row 5
  for (let i = 0; i < BAD_UNIT_ROWS.length; i++) lines.push(`${IND},2025-04,9${String(i).padStart(2, '0')},10,,`); // rows 6…60: no such unit
  return lines.join('\n') + '\n';
}

const values = () => srv.api<{ period: string; admin_unit: string; value: number }[]>('GET', `/api/v1/indicator-values?indicator=${IND}`);

beforeAll(async () => {
  srv = await startServer({ entities: 40, historyHours: 1 });
  // An indicator of its own, so that what the import writes is all there is.
  await srv.api('POST', '/api/v1/indicators', [
    {
      code: IND,
      name: 'Số lao động được tuyển dụng (E2E)',
      name_en: 'People hired (E2E)',
      domain: 'labour',
      unit: 'người',
      periodicity: 'monthly',
      direction: 'higher_is_better',
      targets: {},
      thresholds: { kind: 'target_ratio', green: 1, amber: 0.95 },
      headline: false,
    },
  ]);
  // A gauge that reported once and has a 2-second contract: late soon after.
  const late = await srv.api<{ token: string }>('POST', '/api/v1/sources', { id: LATE, name: 'Trạm đo mực nước Cầu Ông Cộ', kind: 'http_push', domain: 'water', expected_interval_secs: 2 });
  const gauge = srv.seeded?.entities.find((e) => e.type === 'WaterLevelObserved');
  if (!gauge) throw new Error('the seed has no water gauge');
  await srv.api('POST', '/api/v1/observations', [{ entity: gauge.id, attribute: gauge.attribute, value: 1.5 }], late.token);
  // An MQTT source whose broker does not answer (port 9 refuses): its connector keeps reconnecting.
  await srv.api('POST', '/api/v1/sources', {
    id: DEAD,
    name: 'Cảm biến MQTT (máy chủ hỏng)',
    kind: 'mqtt',
    domain: 'environment',
    expected_interval_secs: 3600,
    connector: { host: '127.0.0.1', port: 9, topics: [{ filter: 'e2e/#', qos: 1 }] },
  });
  chrome = await launch();
  page = await chrome.browser.newPage();
  errors = watchErrors(page);
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  await signIn(page, srv.url, srv.username, srv.password);
});

afterAll(async () => {
  await chrome?.close();
  await srv?.stop();
});

describe('sources page', () => {
  test('a late source shows as late by how much, an active one as on time, problems first', async () => {
    await page.waitForTimeout(3500); // past the late gauge's 2-second contract
    await page.click('header nav a[href="/sources"]');
    await page.locator('[data-testid=sources-list]').waitFor({ timeout: 10_000 });
    expect(await page.locator('main h1').textContent()).toBe('Nguồn dữ liệu');

    const late = page.locator(`tr[data-source="${LATE}"]`);
    await expect.poll(() => late.getAttribute('data-health')).toBe('late');
    expect(await late.textContent()).toContain('Trễ hạn');
    expect(await late.locator('[data-late-by]').textContent()).toMatch(/^trễ \d+ giây$/);
    // Last message: relative, and absolute in Vietnamese time.
    expect(await late.locator('[data-last-seen]').textContent()).toMatch(/\d+ giây trước/);
    expect(await late.locator('[data-last-seen] [data-abs]').textContent()).toMatch(/^\d\d:\d\d \d\d\/\d\d\/\d{4}$/);
    expect(await late.locator('[data-accepted]').textContent()).toBe('1');

    const active = page.locator('tr[data-source="aq-network"]');
    expect(await active.getAttribute('data-health')).toBe('ok');
    expect(await active.textContent()).toContain('Đúng hạn');
    expect(Number((await active.locator('[data-accepted]').textContent())?.replace(/\D/g, ''))).toBeGreaterThan(0);
    expect(await active.locator('[data-rejected]').textContent()).toBe('0');

    // The never-reporting seeded source and the dead broker come before every on-time source.
    const order = await page.locator('tr[data-source]').evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-source'), r.getAttribute('data-health')]));
    const firstOk = order.findIndex(([, h]) => h === 'ok');
    expect(firstOk).toBeGreaterThan(0);
    expect(order.slice(firstOk).every(([, h]) => h === 'ok')).toBe(true);
    expect(order.slice(0, firstOk).map(([id]) => id)).toEqual(expect.arrayContaining([LATE, DEAD, 'health-his']));
  });

  test('a connector that cannot reach its broker shows as a connection problem', async () => {
    const dead = page.locator(`tr[data-source="${DEAD}"]`);
    await expect.poll(() => dead.getAttribute('data-health'), { timeout: 15_000 }).toBe('down');
    expect(await dead.locator('[data-connection]').getAttribute('data-connection')).toMatch(/^(reconnecting|connecting|failed)$/);
    expect(await dead.textContent()).toContain('Mất kết nối');
    // The connector's own error is shown with it, once it has one.
    await expect.poll(() => dead.locator('[data-connection-error]').count(), { timeout: 15_000 }).toBe(1);
    expect(((await dead.locator('[data-connection-error]').textContent()) ?? '').length).toBeGreaterThan(3);
  });

  test('a refused post shows in the counts and the last error without a reload', async () => {
    const r = await fetch(`${srv.url}/api/v1/observations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${srv.seeded?.tokens['aq-network']}` },
      body: JSON.stringify([{ entity: 'urn:ngsi-ld:AirQualityObserved:khong-ton-tai', attribute: 'pm25', value: 12 }]),
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    const row = page.locator('tr[data-source="aq-network"]');
    // The page polls every 5 s.
    await expect.poll(() => row.locator('[data-rejected]').textContent(), { timeout: 15_000 }).toBe('1');
    const lastError = (await row.locator('[data-last-error]').textContent()) ?? '';
    expect(lastError).toContain('khong-ton-tai');
    expect(await row.getAttribute('data-health')).toBe('errors');
    const api = await srv.api<{ id: string; rejected: number; last_error?: string }[]>('GET', '/api/v1/sources');
    expect(api.find((s) => s.id === 'aq-network')?.last_error).toBe(lastError.trim());
  });

  test('filters: problems only, by kind, by words; kept in the address', async () => {
    await page.check('[data-testid=filter-problems]');
    await expect.poll(() => page.locator('tr[data-source][data-health=ok]').count()).toBe(0);
    expect(await page.locator(`tr[data-source="${LATE}"]`).count()).toBe(1);
    expect(new URL(page.url()).search).toBe('?problems=1');
    await page.uncheck('[data-testid=filter-problems]');
    await page.selectOption('[data-testid=filter-kind]', 'mqtt');
    await expect.poll(() => page.locator('tr[data-source]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-source')))).toEqual([DEAD]);
    await page.selectOption('[data-testid=filter-kind]', '');
    await page.fill('[data-testid=filter-text]', 'Cầu Ông Cộ');
    await expect.poll(() => page.locator('tr[data-source]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-source')))).toEqual([LATE]);
    await page.fill('[data-testid=filter-text]', '');
    await page.locator('tr[data-source="aq-network"]').waitFor();
    await shot(page, '30-sources');
  });

  test('the detail view of one source shows its contract, counts, error and connection fields', async () => {
    await page.click(`tr[data-source="${DEAD}"] [data-action=details]`);
    const d = page.locator(`[data-testid=source-detail][data-source="${DEAD}"]`);
    await d.waitFor({ timeout: 5000 });
    expect(new URL(page.url()).pathname).toBe(`/sources/${DEAD}`);
    expect(await page.locator('main h1').textContent()).toBe('Cảm biến MQTT (máy chủ hỏng)');
    const conn = d.locator('[data-block=connection]');
    expect(await conn.textContent()).toContain('127.0.0.1:9');
    expect(await conn.textContent()).toContain('broker');
    expect(await d.textContent()).toContain('"topics"');
    await shot(page, '31-source-detail');
    // Reload lands on the same source.
    await page.goto(`${srv.url}/sources/aq-network`);
    const a = page.locator('[data-testid=source-detail][data-source="aq-network"]');
    await a.waitFor({ timeout: 10_000 });
    expect(await a.locator('[data-rejected]').textContent()).toBe('1');
    expect(await a.locator('[data-last-error]').textContent()).toContain('khong-ton-tai');
    await page.goto(`${srv.url}/sources/khong-co`);
    await page.locator('[data-testid=source-missing]').waitFor({ timeout: 10_000 });
  });
});

describe('import screen', () => {
  test('a CSV with bad rows gets a report naming every bad row, and nothing is written', async () => {
    await page.goto(`${srv.url}/sources`);
    await page.click('header nav a[href="/imports"]');
    await page.locator('[data-testid=import-page]').waitFor();
    expect(await page.locator('main h1').textContent()).toBe('Nhập dữ liệu từ tệp');
    await page.locator('[data-testid=recent-none]').waitFor();
    // The template is served by the console itself.
    const href = await page.locator('[data-testid=template]').getAttribute('href');
    const tpl = await fetch(srv.url + href);
    expect(tpl.status).toBe(200);
    expect(tpl.headers.get('content-type')).toContain('text/csv');
    expect((await tpl.text()).replace(/^\uFEFF/, '').trim()).toBe('Mã chỉ tiêu,Kỳ báo cáo,Địa bàn,Giá trị,Trạng thái,Ghi chú');

    await page.setInputFiles('[data-testid=file-input]', { name: 'chi-tieu-2025.csv', mimeType: 'text/csv', buffer: Buffer.from(csv(), 'utf8') });
    expect(await page.locator('[data-testid=picked]').textContent()).toContain('chi-tieu-2025.csv');
    await page.click('[data-action=start]');
    const job = page.locator('[data-testid=import-job][data-status=done]');
    await job.waitFor({ timeout: 20_000 });
    expect(await job.getAttribute('data-outcome')).toBe('refused');
    expect(await job.locator('[data-testid=outcome]').textContent()).toContain('không ghi dòng nào');
    expect(await job.locator('[data-testid=refused-note]').textContent()).toContain('Không có dữ liệu nào được ghi');
    expect(await job.locator('[data-count=rows]').textContent()).toBe('59');
    expect(await job.locator('[data-count=valid]').textContent()).toBe('3');
    expect(await job.locator('[data-count=invalid]').textContent()).toBe('56');
    expect(await job.locator('[data-count=written]').textContent()).toBe('0');

    // Page 1 of the bad rows: the bad value first, with its cell and reason.
    const first = job.locator(`[data-testid=row-errors] tr[data-row="${BAD_VALUE_ROW}"]`);
    expect(await first.locator('td').nth(1).textContent()).toBe(`D${BAD_VALUE_ROW}`);
    expect(await first.locator('td').nth(2).textContent()).toBe('Giá trị');
    expect(((await first.locator('td').nth(3).textContent()) ?? '').length).toBeGreaterThan(5);
    expect(await job.locator('[data-testid=row-errors] tbody tr').count()).toBe(50);
    expect(await job.locator('[data-testid=pager]').textContent()).toContain('Trang 1/2');
    await job.locator('[data-action=next]').click();
    await expect.poll(() => job.locator('[data-testid=row-errors] tbody tr').count()).toBe(6);
    const last = BAD_UNIT_ROWS[BAD_UNIT_ROWS.length - 1];
    const lastRow = job.locator(`[data-testid=row-errors] tr[data-row="${last}"]`);
    expect(await lastRow.locator('td').nth(1).textContent()).toBe(`C${last}`);
    expect(await lastRow.textContent()).toContain('954');
    await shot(page, '32-import-report');

    expect(await values()).toEqual([]);
  });

  test('"import the valid rows only" writes them, and they can be read back', async () => {
    const job = page.locator('[data-testid=import-job]');
    const button = job.locator('[data-action=accept-valid]');
    expect(await button.textContent()).toContain('Chỉ nhập 3 dòng hợp lệ');
    const refused = await job.getAttribute('data-job');
    await button.click();
    const done = page.locator('[data-testid=import-job][data-status=done][data-outcome=written]');
    await done.waitFor({ timeout: 20_000 });
    expect(await done.getAttribute('data-job')).not.toBe(refused);
    expect(await done.locator('[data-count=written]').textContent()).toBe('3');
    expect(await done.locator('[data-count=invalid]').textContent()).toBe('56');
    expect(await done.locator('[data-action=accept-valid]').count()).toBe(0);
    expect(await done.locator('[data-testid=skipped-note]').textContent()).toContain('56 dòng lỗi');
    const got = (await values()).map((v) => [v.period, v.admin_unit, v.value]).sort();
    expect(got).toEqual([
      ['2025-01', '718', 1200],
      ['2025-02', '718', 1250],
      ['2025-03', '718', 1300],
    ]);
    // Both jobs are listed, newest first.
    const recent = page.locator('[data-testid=recent-imports] tbody tr');
    await expect.poll(() => recent.count()).toBe(2);
    expect(await recent.first().getAttribute('data-outcome')).toBe('written');
    expect(await recent.nth(1).getAttribute('data-outcome')).toBe('refused');
    expect(await recent.first().textContent()).toContain('admin');
    expect(await recent.first().locator('[data-file]').textContent()).toBe('chi-tieu-2025.csv');
    expect(await done.locator('[data-testid=job-file]').textContent()).toBe('chi-tieu-2025.csv');
    await shot(page, '33-import-written');
    // A reload of the job's address shows its report again.
    await page.goto(page.url());
    await page.locator(`[data-testid=import-job][data-job="${await done.getAttribute('data-job')}"][data-outcome=written]`).waitFor({ timeout: 10_000 });
    // Opening the earlier job from the list shows its report, without the button (the file is not at hand any more).
    await page.locator(`[data-testid=recent-imports] tr[data-job="${refused}"] [data-action=open]`).click();
    await page.locator(`[data-testid=import-job][data-job="${refused}"][data-outcome=refused]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-action=accept-valid]').count()).toBe(0);
  });

  test('a file that is not CSV or XLSX is refused before upload', async () => {
    await page.setInputFiles('[data-testid=file-input]', { name: 'bao-cao.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4') });
    expect(await page.locator('[data-testid=drop-zone] [role=alert]').textContent()).toContain('bao-cao.pdf');
  });

  test('a file dropped on the drop zone is picked like a chosen one', async () => {
    await page.locator('[data-testid=drop-zone]').evaluate((zone) => {
      const dt = new DataTransfer();
      dt.items.add(new File(['Mã chỉ tiêu,Kỳ báo cáo,Địa bàn,Giá trị\n'], 'keo-tha.csv', { type: 'text/csv' }));
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    expect(await page.locator('[data-testid=picked]').textContent()).toContain('keo-tha.csv');
    expect(await page.locator('[data-testid=drop-zone] [role=alert]').count()).toBe(0);
    expect(await page.locator('[data-action=start]').isEnabled()).toBe(true);
  });
});

describe('English, narrow screens and roles', () => {
  test('both screens speak English', async () => {
    await page.click('button[data-lang=en]');
    await expect.poll(() => page.locator('main h1').first().textContent()).toBe('Import from a file');
    expect(await page.locator('header nav').textContent()).toContain('Sources');
    expect(await page.locator('[data-testid=import-job] [data-testid=outcome]').textContent()).toContain('nothing was written');
    await page.click('header nav a[href="/sources"]');
    await expect.poll(() => page.locator('main h1').first().textContent()).toBe('Data sources');
    const late = page.locator(`tr[data-source="${LATE}"]`);
    await late.waitFor();
    expect(await late.textContent()).toContain('Late');
    expect(await late.locator('[data-late-by]').textContent()).toMatch(/^\d+ (s|min) late$/);
    expect(await page.locator('tr[data-source="hydro-gauges"]').textContent()).toContain('On time');
    expect(await page.locator('tr[data-source="aq-network"]').textContent()).toContain('Refusing items');
    await shot(page, '34-sources-en');
  });

  test('a narrow screen stacks the tables without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 400, height: 900 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, '35-sources-narrow');
    await page.click('header nav a[href="/imports"]');
    await page.locator('[data-testid=import-page]').waitFor();
    await page.waitForTimeout(300);
    await shot(page, '36-import-narrow');
    await page.locator('[data-testid=recent-imports] tbody tr').first().locator('[data-action=open]').click();
    await page.locator('[data-testid=import-job][data-outcome=written]').waitFor({ timeout: 10_000 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await page.locator('[data-testid=import-job]').scrollIntoViewIfNeeded();
    await shot(page, '37-import-report-narrow');
    await page.setViewportSize({ width: 1600, height: 1000 });
    await page.click('button[data-lang=vi]');
  });

  test('a viewer is told plainly that importing needs the admin or officer role', async () => {
    await srv.api('POST', '/api/v1/users', { username: 'e2e-viewer', password: 'viewer-password-1', role: 'viewer' });
    const r = await apiCall<{ token: string }>(srv.url, 'POST', '/api/v1/auth/login', { username: 'e2e-viewer', password: 'viewer-password-1' });
    // The API refuses it too, so the message is not the console's opinion.
    const refused = await fetch(`${srv.url}/api/v1/imports?kind=indicator_values`, { method: 'POST', headers: { authorization: `Bearer ${r.token}`, 'content-type': 'text/csv' }, body: csv() });
    expect(refused.status).toBe(403);
    // A browser of its own: the admin's session in the first one stays as it is.
    const second = await launch();
    try {
      const other = await second.browser.newPage();
      const otherErrors = watchErrors(other);
      await signIn(other, srv.url, 'e2e-viewer', 'viewer-password-1');
      await other.goto(`${srv.url}/imports`);
      const msg = other.locator('[data-testid=import-forbidden]');
      await msg.waitFor({ timeout: 10_000 });
      expect(await msg.textContent()).toContain('"viewer"');
      expect(await other.locator('[data-testid=file-input]').count()).toBe(0);
      expect(await other.locator('header nav').textContent()).toContain('Nhập dữ liệu');
      expect(otherErrors.filter((e) => !/401 \(Unauthorized\)/.test(e))).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

describe('quality', () => {
  test('no console errors on the way', () => {
    // Signing in starts with the expected 401 of "who am I?".
    const real = errors.filter((e) => !/401 \(Unauthorized\)/.test(e));
    if (real.length) console.log(real, failed);
    expect(real).toEqual([]);
    expect(failed.filter((f) => !f.endsWith('/api/v1/auth/me'))).toEqual([]);
  });
});
