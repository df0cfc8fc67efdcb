// Shapes of the Panorama HTTP API (/api/v1, see /api/v1/openapi.json).

export type StatusColour = 'green' | 'amber' | 'red' | 'unknown';
export type Periodicity = 'real_time' | 'daily' | 'monthly' | 'quarterly' | 'yearly';
export type Direction = 'higher_is_better' | 'lower_is_better';
export type Thresholds =
  | { kind: 'target_ratio'; green: number; amber: number }
  | { kind: 'absolute'; green: number; amber: number };

export interface User {
  username: string;
  display_name: string;
  role: string;
  agency?: string;
}

export interface Session {
  user: User;
  token: string;
  expires_at: string;
}

export interface Domain {
  code: string;
  name: string;
  name_en: string;
  icon: string;
  sort: number;
}

export interface IndicatorValue {
  indicator: string;
  period: string;
  admin_unit: string;
  value: number;
  status?: 'provisional' | 'final' | 'revised';
  revision?: number;
  submitted_at?: string;
  target?: number;
  status_colour?: StatusColour;
  domain?: string;
}

export interface Indicator {
  code: string;
  name: string;
  name_en: string;
  domain: string;
  unit: string;
  periodicity: Periodicity;
  direction: Direction;
  targets: Record<string, number>;
  thresholds: Thresholds;
  headline: boolean;
  owner_agency?: string;
  source?: string;
}

export interface IndicatorSummary extends Indicator {
  latest?: IndicatorValue;
  trend: number[];
}

export type Value = number | string | boolean | Record<string, unknown> | unknown[];

export interface AttributeSpec {
  type: 'number' | 'text' | 'boolean' | 'json';
  unit?: string;
}

export interface Geometry {
  type: string;
  coordinates: unknown;
}

export interface Entity {
  id: string;
  type: string;
  name: string;
  domain: string;
  admin_unit?: string;
  location?: Geometry;
  attributes: Record<string, AttributeSpec>;
  properties?: Record<string, unknown>;
}

export interface LatestValue {
  entity: string;
  attribute: string;
  time: string;
  value: Value;
}

export interface Page<T> {
  items: T[];
  next_cursor?: string;
}

export interface SeriesPoint {
  time: string;
  value: Value;
  count?: number;
}

export interface Freshness {
  late: boolean;
  age_secs?: number | null;
  last_seen_at?: string | null;
  expected_interval_secs: number;
}

export interface SourceView {
  id: string;
  name: string;
  kind: string;
  domain?: string;
  owner_agency?: string;
  expected_interval_secs: number;
  last_seen_at?: string;
  accepted: number;
  rejected: number;
  last_error?: string;
  freshness: Freshness;
}

export interface Health {
  status: 'ok' | 'degraded' | 'failing';
  problems: string[];
  late_sources: string[];
  version: string;
}

export interface LiveObservation {
  entity: string;
  attribute: string;
  time: string;
  value: Value;
  entity_type: string;
  domain: string;
  admin_unit?: string;
}

export interface Feature<P = Record<string, unknown>> {
  type: 'Feature';
  id?: string | number;
  geometry: Geometry | null;
  properties: P;
}

export interface FeatureCollection<P = Record<string, unknown>> {
  type: 'FeatureCollection';
  features: Feature<P>[];
  next_cursor?: string | null;
}

export interface AdminUnitProps {
  code: string;
  name: string;
  name_en?: string;
  level: string;
  parent?: string;
  valid_from?: string;
  valid_to?: string;
  successors?: string[];
}
