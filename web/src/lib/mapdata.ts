// The map's data, kept apart from MapLibre so it can be tested: entities
// grouped into one layer per type with numeric feature ids, the attribute
// each layer is coloured by, and the live colour state (a value per feature,
// normalised to 0..1, applied in batches once per frame).

import { normalise, robustRange } from './colour';
import type { Entity, LatestValue, Value } from './types';

export interface MapFeature {
  type: 'Feature';
  id: number;
  geometry: { type: 'Point'; coordinates: [number, number] };
  properties: { eid: string; name: string; t: string };
}

export interface Layer {
  type: string;
  domain: string;
  /** Attribute the points are coloured by (numeric, else boolean), if any. */
  attribute: string | null;
  kind: 'number' | 'boolean' | null;
  unit?: string;
  features: MapFeature[];
  /** Colour scale bounds for numeric attributes. */
  range: [number, number];
}

/** Known attributes that tell the state of a thing best, by preference. */
const PREFERRED = ['aqi', 'pm25', 'waterLevel', 'intensity', 'congestion', 'occupancy', 'load', 'rainfall', 'level', 'speed', 'online', 'status'];

/** The attribute a type's points are coloured by. */
export function primaryAttribute(attrs: Entity['attributes']): { name: string; kind: 'number' | 'boolean'; unit?: string } | null {
  const names = Object.keys(attrs);
  const usable = names.filter((n) => attrs[n].type === 'number' || attrs[n].type === 'boolean');
  if (!usable.length) return null;
  const rank = (n: string) => {
    const i = PREFERRED.indexOf(n);
    return (i < 0 ? 100 : i) + (attrs[n].type === 'number' ? 0 : 50);
  };
  const best = [...usable].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0];
  return { name: best, kind: attrs[best].type as 'number' | 'boolean', unit: attrs[best].unit };
}

/** A representative point of a GeoJSON geometry (the point, or the mean of the first ring/line). */
export function pointOf(g: Entity['location']): [number, number] | null {
  if (!g) return null;
  const c = g.coordinates as unknown;
  if (g.type === 'Point') return c as [number, number];
  const flat: [number, number][] = [];
  const walk = (x: unknown) => {
    if (Array.isArray(x) && typeof x[0] === 'number') flat.push(x as [number, number]);
    else if (Array.isArray(x)) x.forEach(walk);
  };
  walk(c);
  if (!flat.length) return null;
  const lon = flat.reduce((a, p) => a + p[0], 0) / flat.length;
  const lat = flat.reduce((a, p) => a + p[1], 0) / flat.length;
  return [lon, lat];
}

/** Numeric value for colouring: numbers as they are, booleans as 1/0. */
export function numeric(v: Value | null | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return NaN;
}

export class MapData {
  layers = new Map<string, Layer>();
  /** entity id → [type, feature id] */
  index = new Map<string, [string, number]>();
  /** Latest raw value of each entity's primary attribute. */
  values = new Map<string, number>();
  private nextId = 1;
  private pending = new Map<string, number>();

  /** Adds entities (a page at a time). */
  add(entities: Entity[]): void {
    for (const e of entities) {
      if (this.index.has(e.id)) continue;
      const p = pointOf(e.location);
      if (!p) continue;
      let layer = this.layers.get(e.type);
      if (!layer) {
        const pa = primaryAttribute(e.attributes ?? {});
        layer = { type: e.type, domain: e.domain, attribute: pa?.name ?? null, kind: pa?.kind ?? null, unit: pa?.unit, features: [], range: [0, 1] };
        this.layers.set(e.type, layer);
      }
      const id = this.nextId++;
      layer.features.push({ type: 'Feature', id, geometry: { type: 'Point', coordinates: p }, properties: { eid: e.id, name: e.name, t: e.type } });
      this.index.set(e.id, [e.type, id]);
    }
  }

  /** Records latest values; returns nothing (call `rescale` then `drain`). */
  setLatest(items: Pick<LatestValue, 'entity' | 'attribute' | 'value'>[]): void {
    for (const l of items) this.observe(l.entity, l.attribute, l.value);
  }

  /** A live or initial value; queued for the next frame when it colours a point. */
  observe(entity: string, attribute: string, value: Value): boolean {
    const at = this.index.get(entity);
    if (!at) return false;
    const layer = this.layers.get(at[0]);
    if (!layer || layer.attribute !== attribute) return false;
    const v = numeric(value);
    if (!Number.isFinite(v)) return false;
    this.values.set(entity, v);
    this.pending.set(entity, v);
    return true;
  }

  /** Sets each numeric layer's colour range from its current values. */
  rescale(): void {
    for (const layer of this.layers.values()) {
      if (layer.kind !== 'number') {
        layer.range = [0, 1];
        continue;
      }
      const vals: number[] = [];
      for (const f of layer.features) {
        const v = this.values.get(f.properties.eid);
        if (v !== undefined) vals.push(v);
      }
      layer.range = robustRange(vals);
    }
  }

  /** Every value to (re)apply, e.g. after a rescale. */
  requeueAll(): void {
    for (const [e, v] of this.values) this.pending.set(e, v);
  }

  /** Takes the queued colour changes: [type, feature id, value 0..1]. */
  drain(): [string, number, number][] {
    const out: [string, number, number][] = [];
    for (const [entity, v] of this.pending) {
      const at = this.index.get(entity);
      const layer = at && this.layers.get(at[0]);
      if (!at || !layer) continue;
      out.push([at[0], at[1], layer.kind === 'boolean' ? v : normalise(v, layer.range[0], layer.range[1])]);
    }
    this.pending.clear();
    return out;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get size(): number {
    return this.index.size;
  }
}
