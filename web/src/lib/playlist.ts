// The wall's playlist: which views rotate and how fast, from the URL
// (/wall?views=overview,map,domain:environment,alerts&interval=30).

export type Slide = { kind: 'overview' } | { kind: 'map' } | { kind: 'alerts' } | { kind: 'domain'; code: string };

export const DEFAULT_VIEWS = 'overview,map,domain:environment,domain:traffic,domain:water,alerts';
export const DEFAULT_INTERVAL = 30;

/** Parses `views` (comma-separated); unknown items and unknown domains are dropped. */
export function parseSlides(views: string | null, domains: string[]): Slide[] {
  const out: Slide[] = [];
  for (const raw of (views || DEFAULT_VIEWS).split(',')) {
    const v = raw.trim();
    if (v === 'overview' || v === 'map' || v === 'alerts') out.push({ kind: v });
    else if (v.startsWith('domain:')) {
      const code = v.slice(7);
      if (domains.length === 0 || domains.includes(code)) out.push({ kind: 'domain', code });
    }
  }
  return out.length ? out : [{ kind: 'overview' }];
}

/** Seconds per slide: 1 s to 1 h (fractions allowed for tests), default 30. */
export function parseInterval(s: string | null): number {
  const n = Number(s);
  if (!s || !Number.isFinite(n)) return DEFAULT_INTERVAL;
  return Math.min(3600, Math.max(0.2, n));
}

export function slideKey(s: Slide): string {
  return s.kind === 'domain' ? `domain:${s.code}` : s.kind;
}

/** A rotation timer that can pause, skip and report progress; time is injected. */
export class Rotation {
  index = 0;
  private started: number;
  private pausedAt: number | null = null;

  constructor(
    private readonly count: number,
    private readonly intervalMs: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.started = now();
  }

  get paused(): boolean {
    return this.pausedAt !== null;
  }

  /** Advances when the interval has passed; returns whether the slide changed. */
  tick(): boolean {
    if (this.pausedAt !== null || this.count <= 1) return false;
    if (this.now() - this.started >= this.intervalMs) {
      this.go(1);
      return true;
    }
    return false;
  }

  go(step: number): void {
    this.index = (((this.index + step) % this.count) + this.count) % this.count;
    this.started = this.now();
    if (this.pausedAt !== null) this.pausedAt = this.started;
  }

  toggle(): void {
    if (this.pausedAt === null) this.pausedAt = this.now();
    else {
      this.started += this.now() - this.pausedAt;
      this.pausedAt = null;
    }
  }

  /** 0..1 of the current slide's time. */
  progress(): number {
    const t = (this.pausedAt ?? this.now()) - this.started;
    return Math.min(1, t / this.intervalMs);
  }

  remainingSecs(): number {
    return Math.max(0, Math.ceil((this.intervalMs - ((this.pausedAt ?? this.now()) - this.started)) / 1000));
  }
}
