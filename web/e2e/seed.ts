// A small synthetic province for the end-to-end tests, posted over the public
// API: nine districts (Voronoi cells around the real district seats of Binh
// Duong), indicators for every domain with plan targets and history, sensors
// and cameras with a few hours of readings, and sources (one of them late).
// Deterministic: the same options give the same data.

import { apiCall } from './server';

export interface SeedOptions {
  /** Number of sensors and cameras (default 180). */
  entities?: number;
  /** Hours of readings to backfill per entity (default 6, every 10 minutes). */
  historyHours?: number;
  /** Skip indicators (perf runs that only need entities). */
  indicators?: boolean;
}

export interface SeededEntity {
  id: string;
  type: string;
  name: string;
  domain: string;
  admin_unit: string;
  attribute: string;
  lon: number;
  lat: number;
}

export interface Seeded {
  districts: { code: string; name: string }[];
  entities: SeededEntity[];
  indicators: { code: string; domain: string; name: string }[];
  tokens: Record<string, string>;
  domains: string[];
}

export const PROVINCE = '74';
export const DISTRICTS: [string, string, number, number][] = [
  ['718', 'Thủ Dầu Một', 106.665, 10.995],
  ['719', 'Bàu Bàng', 106.62, 11.26],
  ['720', 'Dầu Tiếng', 106.41, 11.3],
  ['721', 'Bến Cát', 106.57, 11.12],
  ['722', 'Phú Giáo', 106.8, 11.3],
  ['723', 'Tân Uyên', 106.79, 11.05],
  ['724', 'Dĩ An', 106.77, 10.9],
  ['725', 'Thuận An', 106.7, 10.93],
  ['726', 'Bắc Tân Uyên', 106.87, 11.16],
];

/** The province outline (convex, so cells can be clipped to it). */
const OUTLINE: [number, number][] = [
  [106.33, 11.2],
  [106.45, 11.46],
  [106.72, 11.5],
  [106.95, 11.33],
  [106.98, 11.06],
  [106.84, 10.86],
  [106.7, 10.86],
  [106.55, 10.98],
  [106.33, 11.2],
];

/** mulberry32: a tiny seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Clips a convex polygon by the half-plane of points closer to `a` than to `b`. */
function clip(poly: [number, number][], a: [number, number], b: [number, number]): [number, number][] {
  const [nx, ny] = [b[0] - a[0], b[1] - a[1]];
  const c = (b[0] ** 2 + b[1] ** 2 - a[0] ** 2 - a[1] ** 2) / 2;
  const side = (p: [number, number]) => p[0] * nx + p[1] * ny - c; // < 0: closer to a
  const out: [number, number][] = [];
  const pts = poly.slice(0, -1);
  for (let i = 0; i < pts.length; i++) {
    const p = pts[i];
    const q = pts[(i + 1) % pts.length];
    const sp = side(p);
    const sq = side(q);
    if (sp <= 0) out.push(p);
    if (sp * sq < 0) {
      const t = sp / (sp - sq);
      out.push([p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])]);
    }
  }
  if (out.length) out.push(out[0]);
  return out;
}

export function districtCells(): Map<string, [number, number][]> {
  const cells = new Map<string, [number, number][]>();
  for (const [code, , lon, lat] of DISTRICTS) {
    let poly = OUTLINE.slice();
    for (const [other, , lo, la] of DISTRICTS) {
      if (other !== code) poly = clip(poly, [lon, lat], [lo, la]);
    }
    cells.set(
      code,
      poly.map(([x, y]) => [Math.round(x * 1e5) / 1e5, Math.round(y * 1e5) / 1e5]),
    );
  }
  return cells;
}

function nearestDistrict(lon: number, lat: number): string {
  let best = DISTRICTS[0][0];
  let bd = Infinity;
  for (const [code, , x, y] of DISTRICTS) {
    const d = (x - lon) ** 2 + (y - lat) ** 2;
    if (d < bd) [bd, best] = [d, code];
  }
  return best;
}

function inside(poly: [number, number][], lon: number, lat: number): boolean {
  let ins = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i];
    const [xj, yj] = poly[j];
    if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) ins = !ins;
  }
  return ins;
}

/** Entity kinds: type, domain, Vietnamese label, attribute, unit, base, spread, source id, share. */
const KINDS = [
  { type: 'AirQualityObserved', domain: 'environment', label: 'Trạm quan trắc không khí', attr: 'pm25', unit: 'µg/m3', base: 32, spread: 18, source: 'aq-network', share: 0.22 },
  { type: 'WaterLevelObserved', domain: 'water', label: 'Trạm đo mực nước', attr: 'waterLevel', unit: 'm', base: 1.6, spread: 0.8, source: 'hydro-gauges', share: 0.14 },
  { type: 'TrafficFlowObserved', domain: 'traffic', label: 'Điểm đếm lưu lượng', attr: 'intensity', unit: 'xe/giờ', base: 900, spread: 500, source: 'traffic-counters', share: 0.22 },
  { type: 'Camera', domain: 'public-order', label: 'Camera an ninh', attr: 'online', unit: '', base: 1, spread: 0, source: 'camera-vms', share: 0.16 },
  { type: 'EnergyMeter', domain: 'energy', label: 'Trạm biến áp', attr: 'load', unit: 'MW', base: 38, spread: 14, source: 'power-scada', share: 0.14 },
  { type: 'RainGauge', domain: 'disaster', label: 'Trạm đo mưa', attr: 'rainfall', unit: 'mm', base: 2, spread: 6, source: 'rain-gauges', share: 0.12 },
] as const;

/** Indicators per domain: code, vi, en, unit, direction, base, target, headline, periodicity. */
type Ind = [string, string, string, string, string, 'h' | 'l', number, number, boolean, ('monthly' | 'quarterly' | 'yearly')?];
const INDICATORS: Ind[] = [
  ['health', 'health-insurance-coverage', 'Tỷ lệ dân số tham gia BHYT', 'Health insurance coverage', '%', 'h', 93.1, 95, true],
  ['health', 'health-hospital-beds', 'Số giường bệnh/vạn dân', 'Hospital beds per 10,000 people', 'giường', 'h', 28.4, 30, true],
  ['health', 'health-dengue-cases', 'Số ca sốt xuất huyết', 'Dengue cases', 'ca', 'l', 210, 180, false],
  ['education', 'edu-enrolment-rate', 'Tỷ lệ huy động trẻ đến trường', 'School enrolment rate', '%', 'h', 98.6, 99, true],
  ['education', 'edu-standard-schools', 'Trường đạt chuẩn quốc gia', 'Schools meeting national standards', '%', 'h', 71, 75, true],
  ['labour', 'labour-new-jobs', 'Số lao động được giải quyết việc làm', 'People placed in jobs', 'người', 'h', 4300, 4200, true],
  ['labour', 'labour-unemployment', 'Tỷ lệ thất nghiệp khu vực thành thị', 'Urban unemployment rate', '%', 'l', 2.4, 2.5, true],
  ['children', 'children-malnutrition', 'Tỷ lệ trẻ dưới 5 tuổi suy dinh dưỡng', 'Under-five malnutrition', '%', 'l', 6.1, 5.5, true],
  ['children', 'children-vaccination', 'Tỷ lệ tiêm chủng đầy đủ', 'Full vaccination rate', '%', 'h', 97.2, 98, true],
  ['social-protection', 'social-poor-households', 'Tỷ lệ hộ nghèo', 'Poor households', '%', 'l', 0.6, 0.5, true],
  ['social-protection', 'social-insurance', 'Tỷ lệ lao động tham gia BHXH', 'Workers with social insurance', '%', 'h', 52, 55, true],
  ['science-technology', 'st-patents', 'Số đơn đăng ký sở hữu trí tuệ', 'IP applications', 'đơn', 'h', 37, 40, true],
  ['science-technology', 'st-innovation-firms', 'Doanh nghiệp khoa học công nghệ', 'Science and technology firms', 'DN', 'h', 44, 50, false, 'quarterly'],
  ['prices', 'cpi-yoy', 'Chỉ số giá tiêu dùng so cùng kỳ', 'CPI year on year', '%', 'l', 103.4, 104, true],
  ['prices', 'cpi-food', 'CPI nhóm lương thực, thực phẩm', 'Food CPI', '%', 'l', 104.2, 104, true],
  ['essential-goods', 'goods-rice-price', 'Giá gạo tẻ thường', 'Ordinary rice price', 'đ/kg', 'l', 15800, 16000, true],
  ['essential-goods', 'goods-pork-price', 'Giá thịt heo hơi', 'Live hog price', 'đ/kg', 'l', 62000, 60000, true],
  ['traffic', 'traffic-accidents', 'Số vụ tai nạn giao thông', 'Road accidents', 'vụ', 'l', 42, 40, true],
  ['traffic', 'traffic-congestion-hours', 'Số giờ ùn tắc', 'Hours of congestion', 'giờ', 'l', 65, 80, true],
  ['public-order', 'order-crimes', 'Số vụ phạm pháp hình sự', 'Criminal offences', 'vụ', 'l', 118, 110, true],
  ['public-order', 'order-solved-rate', 'Tỷ lệ điều tra, khám phá án', 'Cases solved', '%', 'h', 86, 85, true],
  ['environment', 'env-aqi-good-days', 'Tỷ lệ ngày có AQI tốt', 'Days with good air', '%', 'h', 81, 85, true],
  ['environment', 'env-waste-collected', 'Tỷ lệ chất thải rắn được thu gom', 'Solid waste collected', '%', 'h', 99.2, 99, true],
  ['water', 'water-clean-access', 'Tỷ lệ dân số dùng nước sạch', 'Population with clean water', '%', 'h', 99.1, 99.5, true],
  ['water', 'water-saigon-salinity', 'Độ mặn sông Sài Gòn tại Thủ Dầu Một', 'Saigon river salinity', '‰', 'l', 0.3, 0.5, true],
  ['admin-procedures', 'admin-dossiers-online-rate', 'Tỷ lệ hồ sơ giải quyết trực tuyến', 'Dossiers handled online', '%', 'h', 99.1, 99, true],
  ['admin-procedures', 'admin-dossiers-on-time', 'Tỷ lệ hồ sơ đúng hạn', 'Dossiers on time', '%', 'h', 97.4, 98, true],
  ['investment', 'fdi-registered-capital', 'Vốn FDI đăng ký', 'FDI registered capital', 'triệu USD', 'h', 220, 250, true],
  ['investment', 'fdi-projects', 'Số dự án FDI mới', 'New FDI projects', 'dự án', 'h', 14, 12, true],
  ['economy', 'econ-grdp-growth', 'Tăng trưởng GRDP', 'GRDP growth', '%', 'h', 6.4, 8, true, 'quarterly'],
  ['economy', 'econ-retail-sales', 'Tổng mức bán lẻ hàng hóa', 'Retail sales', 'tỷ đồng', 'h', 27500, 27000, true],
  ['finance-budget', 'budget-revenue', 'Thu ngân sách', 'Budget revenue', 'tỷ đồng', 'h', 5100, 5400, true],
  ['finance-budget', 'budget-disbursement', 'Giải ngân vốn đầu tư công', 'Public investment disbursed', '%', 'h', 61, 70, true],
  ['industry', 'ind-iip', 'Chỉ số sản xuất công nghiệp', 'Industrial production index', '%', 'h', 106.8, 108, true],
  ['industry', 'ind-park-occupancy', 'Tỷ lệ lấp đầy khu công nghiệp', 'Industrial park occupancy', '%', 'h', 90.5, 90, true],
  ['agriculture', 'agri-rubber-output', 'Sản lượng cao su', 'Rubber output', 'nghìn tấn', 'h', 13.2, 14, true],
  ['agriculture', 'agri-hightech-area', 'Diện tích nông nghiệp công nghệ cao', 'High-tech farming area', 'ha', 'h', 5600, 6000, false, 'quarterly'],
  ['energy', 'energy-consumption', 'Điện thương phẩm', 'Electricity sold', 'triệu kWh', 'h', 2150, 2100, true],
  ['energy', 'energy-outage-hours', 'Thời gian mất điện bình quân', 'Average outage time', 'phút', 'l', 95, 120, true],
  ['urban', 'urban-building-permits', 'Giấy phép xây dựng được cấp', 'Building permits granted', 'giấy phép', 'h', 780, 800, true],
  ['urban', 'urban-green-area', 'Diện tích cây xanh đô thị/người', 'Urban green area per person', 'm²', 'h', 6.2, 7, true, 'yearly'],
  ['tourism-culture', 'tourism-visitors', 'Lượt khách du lịch', 'Tourist visits', 'nghìn lượt', 'h', 390, 420, true],
  ['tourism-culture', 'tourism-revenue', 'Doanh thu du lịch', 'Tourism revenue', 'tỷ đồng', 'h', 410, 400, true],
  ['digital', 'digital-online-services', 'Dịch vụ công trực tuyến toàn trình', 'End-to-end online public services', '%', 'h', 63, 70, true],
  ['digital', 'digital-cashless', 'Tỷ lệ thanh toán không dùng tiền mặt', 'Cashless payments', '%', 'h', 48, 50, true],
  ['public-feedback', 'feedback-received', 'Phản ánh của người dân', 'Citizen reports received', 'phản ánh', 'l', 530, 600, true],
  ['public-feedback', 'feedback-resolved', 'Tỷ lệ phản ánh được xử lý đúng hạn', 'Reports resolved on time', '%', 'h', 91, 95, true],
  ['disaster', 'disaster-flood-points', 'Điểm ngập úng', 'Flooding hot spots', 'điểm', 'l', 11, 8, true],
  ['disaster', 'disaster-landslide', 'Điểm sạt lở bờ sông', 'Riverbank landslide sites', 'điểm', 'l', 6, 6, false],
];

function monthsBack(n: number, now: Date): string[] {
  const out: string[] = [];
  for (let i = n; i >= 1; i--) {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
    out.push(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`);
  }
  return out;
}

function periodsFor(kind: string, now: Date): string[] {
  if (kind === 'monthly') return monthsBack(24, now);
  if (kind === 'quarterly') {
    const months = monthsBack(24, now);
    const qs = [...new Set(months.map((m) => `${m.slice(0, 4)}-Q${Math.floor((Number(m.slice(5)) - 1) / 3) + 1}`))];
    return qs.slice(0, -1);
  }
  const y = now.getUTCFullYear();
  return [String(y - 3), String(y - 2), String(y - 1)];
}

export async function seed(url: string, session: string, e2eToken: string, opts: SeedOptions = {}): Promise<Seeded> {
  const rand = rng(74);
  const call = <T>(method: string, path: string, body?: unknown, token = session) => apiCall<T>(url, method, path, body, token);
  const now = new Date();
  const cells = districtCells();

  // Admin units: the province and its districts.
  const units = [
    { code: PROVINCE, name: 'Bình Dương', name_en: 'Binh Duong', level: 'province', geometry: { type: 'Polygon', coordinates: [OUTLINE] } },
    ...DISTRICTS.map(([code, name]) => ({ code, name, level: 'district', parent: PROVINCE, geometry: { type: 'Polygon', coordinates: [cells.get(code)] } })),
  ];
  await call('POST', '/api/v1/admin-units', units);

  // Sources: one per kind of sensor, one per statistics office, one that is late.
  const tokens: Record<string, string> = { e2e: e2eToken };
  const sources = [
    ...KINDS.map((k) => ({ id: k.source, name: `${k.label} (${k.domain})`, domain: k.domain, expected_interval_secs: 3600 })),
    { id: 'stats-office', name: 'Cục Thống kê tỉnh', domain: 'economy', expected_interval_secs: 40 * 86400 },
    { id: 'health-his', name: 'Hệ thống thông tin y tế', domain: 'health', expected_interval_secs: 1 },
  ];
  for (const s of sources) {
    const r = await call<{ token: string }>('POST', '/api/v1/sources', s);
    tokens[s.id] = r.token;
  }

  // Indicators with history for the province and each district.
  const indicators: Seeded['indicators'] = [];
  if (opts.indicators !== false) {
    const defs = INDICATORS.map(([domain, code, name, name_en, unit, dir, , target, headline, per]) => {
      const year = now.getUTCFullYear();
      return {
        code,
        name,
        name_en,
        domain,
        unit,
        periodicity: per ?? 'monthly',
        direction: dir === 'h' ? 'higher_is_better' : 'lower_is_better',
        targets: { [year - 3]: target * 0.94, [year - 2]: target * 0.96, [year - 1]: target * 0.98, [year]: target },
        thresholds: { kind: 'target_ratio', green: 1, amber: 0.95 },
        headline,
        owner_agency: undefined,
      };
    });
    await call('POST', '/api/v1/indicators', defs);
    const values: unknown[] = [];
    for (const [, code, name, , unit, dir, base, , , per] of INDICATORS) {
      const periods = periodsFor(per ?? 'monthly', now);
      periods.forEach((p, i) => {
        const drift = (dir === 'h' ? 1 : -1) * (i / periods.length) * 0.04;
        const v = base * (0.95 + drift + 0.06 * rand());
        const whole = unit !== '%' && base >= 10;
        const fix = (x: number) => (whole ? Math.round(x) : Number(x.toPrecision(4)));
        values.push({ indicator: code, period: p, admin_unit: PROVINCE, value: fix(v), status: 'final' });
        if (i >= periods.length - 6) {
          for (const [d] of DISTRICTS) {
            const dv = v * (0.75 + 0.5 * rand());
            values.push({ indicator: code, period: p, admin_unit: d, value: fix(dv), status: 'final' });
          }
        }
      });
      indicators.push({ code, domain: INDICATORS.find((x) => x[1] === code)?.[0] ?? '', name });
    }
    for (let i = 0; i < values.length; i += 5000) {
      await call('POST', '/api/v1/indicator-values', values.slice(i, i + 5000), tokens['stats-office']);
    }
  }

  // Sensors and cameras spread over the districts.
  const total = opts.entities ?? 180;
  const entities: SeededEntity[] = [];
  const perDistrictCount = new Map<string, number>();
  const minLon = 106.33, maxLon = 106.98, minLat = 10.86, maxLat = 11.5;
  for (const k of KINDS) {
    const n = Math.max(1, Math.round(total * k.share));
    for (let i = 0; i < n; i++) {
      let lon = 0, lat = 0;
      do {
        lon = minLon + (maxLon - minLon) * rand();
        lat = minLat + (maxLat - minLat) * rand();
      } while (!inside(OUTLINE, lon, lat));
      const d = nearestDistrict(lon, lat);
      const c = (perDistrictCount.get(`${k.type}:${d}`) ?? 0) + 1;
      perDistrictCount.set(`${k.type}:${d}`, c);
      const dname = DISTRICTS.find((x) => x[0] === d)?.[1] ?? d;
      entities.push({
        id: `urn:ngsi-ld:${k.type}:${d}-${String(c).padStart(3, '0')}`,
        type: k.type,
        name: `${k.label} ${dname} ${String(c).padStart(2, '0')}`,
        domain: k.domain,
        admin_unit: d,
        attribute: k.attr,
        lon: Math.round(lon * 1e5) / 1e5,
        lat: Math.round(lat * 1e5) / 1e5,
      });
    }
  }
  for (const k of KINDS) {
    const mine = entities.filter((e) => e.type === k.type);
    for (let i = 0; i < mine.length; i += 5000) {
      await call(
        'POST',
        '/api/v1/entities',
        mine.slice(i, i + 5000).map((e) => ({
          id: e.id,
          type: e.type,
          name: e.name,
          domain: e.domain,
          admin_unit: e.admin_unit,
          location: { type: 'Point', coordinates: [e.lon, e.lat] },
          attributes: { [k.attr]: { type: k.attr === 'online' ? 'boolean' : 'number', ...(k.unit ? { unit: k.unit } : {}) } },
          properties: { address: `${e.name}, ${DISTRICTS.find((x) => x[0] === e.admin_unit)?.[1]}, Bình Dương` },
        })),
        tokens[k.source],
      );
    }
  }

  // Readings: every 10 minutes over the last hours, then one "now" reading.
  const hours = opts.historyHours ?? 6;
  const steps = Math.floor((hours * 60) / 10);
  for (const k of KINDS) {
    const mine = entities.filter((e) => e.type === k.type);
    let batch: unknown[] = [];
    const flush = async () => {
      if (batch.length) await call('POST', '/api/v1/observations', batch, tokens[k.source]);
      batch = [];
    };
    for (const e of mine) {
      const phase = rand() * Math.PI * 2;
      for (let s = steps; s >= 0; s--) {
        const t = new Date(now.getTime() - s * 600_000);
        const value =
          k.attr === 'online'
            ? rand() > 0.05
            : Math.max(0, Number((k.base + k.spread * Math.sin(phase + s / 6) + k.spread * 0.3 * (rand() - 0.5)).toFixed(2)));
        batch.push({ entity: e.id, attribute: k.attr, time: t.toISOString(), value });
        if (batch.length >= 20_000) await flush();
      }
    }
    await flush();
  }

  return {
    districts: DISTRICTS.map(([code, name]) => ({ code, name })),
    entities,
    indicators,
    tokens,
    domains: [...new Set(INDICATORS.map((i) => i[0]))],
  };
}
