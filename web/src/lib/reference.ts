// Reference data that rarely changes, fetched once per page load.

import { get } from './api';
import type { AdminUnitProps, Domain, FeatureCollection } from './types';

const memo = new Map<string, Promise<unknown>>();
function once<T>(key: string, f: () => Promise<T>): Promise<T> {
  let p = memo.get(key) as Promise<T> | undefined;
  if (!p) {
    p = f();
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

export const domainsList = () => once('domains', () => get<Domain[]>('/domains'));

export const adminUnits = () => once('units', () => get<(AdminUnitProps & { name_en?: string })[]>('/admin-units?geometry=false'));

/** Codes of the top-level units (the province): where headline values live. */
export async function topUnits(): Promise<string[]> {
  const units = await adminUnits();
  const levels = new Map(units.map((u) => [u.code, u.level]));
  return units.filter((u) => u.level !== 'country' && (!u.parent || levels.get(u.parent) === 'country')).map((u) => u.code);
}

export const districtsGeo = () => once('districts', () => get<FeatureCollection<AdminUnitProps>>('/admin-units?format=geojson&level=district'));
export const provinceGeo = () => once('province', () => get<FeatureCollection<AdminUnitProps>>('/admin-units?format=geojson&level=province'));

export function unitName(units: AdminUnitProps[], code: string | undefined, en: boolean): string {
  if (!code) return '—';
  const u = units.find((x) => x.code === code);
  return u ? (en && u.name_en ? u.name_en : u.name) : code;
}

/** A unit's name without its kind ("Huyện Bàu Bàng" → "Bàu Bàng"), for tight labels. */
export function shortUnitName(name: string): string {
  return name.replace(/^(Huyện|Thị xã|Thành phố|Quận|Tỉnh|Phường|Xã|Thị trấn|District|City|Town)\s+/i, '');
}
