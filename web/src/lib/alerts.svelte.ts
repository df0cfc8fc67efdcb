// Open alerts, for the overview's counter and the wall's alerts slide. The
// rule engine is optional: when the server has none (404, 503), the console
// says "not configured" instead of showing a number.

import { ApiError, get } from './api';

export interface AlertItem {
  id: number;
  title: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  status: string;
  domain?: string | null;
  admin_unit?: string | null;
  entity?: string | null;
  opened_at: string;
}

const LIMIT = 200;

class Alerts {
  /** null until known; false when the server has no rule engine. */
  available = $state<boolean | null>(null);
  open = $state<AlertItem[]>([]);
  more = $state(false);
  private timer: ReturnType<typeof setInterval> | null = null;
  private users = 0;

  get count(): string {
    return this.more ? `${LIMIT}+` : String(this.open.length);
  }

  async refresh(): Promise<void> {
    try {
      const p = await get<{ items: AlertItem[]; next_cursor?: string }>(`/alerts?status=open&limit=${LIMIT}`);
      this.open = p.items;
      this.more = Boolean(p.next_cursor);
      this.available = true;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 503 || e.status === 501)) {
        this.available = false;
        // No rule engine on this server: ask again rarely, not every 15 s.
        this.slow();
      }
      // Unreachable: keep what we had; the banner says so.
    }
  }

  private slow(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.refresh(), 300_000);
  }

  /** Polls while at least one view shows alerts; returns the release. */
  use(): () => void {
    if (this.users++ === 0) {
      void this.refresh();
      this.timer = setInterval(() => void this.refresh(), 15_000);
    }
    return () => {
      if (--this.users === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }
}

export const alerts = new Alerts();

export const SEVERITY_RANK: Record<AlertItem['severity'], number> = { critical: 0, high: 1, medium: 2, low: 3 };
