// A small history router: the server answers every client route with
// index.html, and this picks the view from the path.

export type Route =
  | { name: 'overview' }
  | { name: 'login' }
  | { name: 'domain'; code: string }
  | { name: 'map' }
  | { name: 'wall' }
  | { name: 'explorer' }
  | { name: 'alerts' }
  | { name: 'incidents' }
  | { name: 'incident'; id: number }
  | { name: 'sources'; id?: string }
  | { name: 'imports' }
  | { name: 'not_found' };

/** Client routes; keep in step with CLIENT_ROUTES in crates/panorama-web. */
export function parseRoute(path: string): Route {
  const p = path.replace(/\/+$/, '') || '/';
  if (p === '/' || p === '/overview') return { name: 'overview' };
  if (p === '/login') return { name: 'login' };
  if (p === '/map') return { name: 'map' };
  if (p === '/wall') return { name: 'wall' };
  if (p === '/explorer') return { name: 'explorer' };
  if (p === '/alerts') return { name: 'alerts' };
  if (p === '/incidents') return { name: 'incidents' };
  if (p === '/sources') return { name: 'sources' };
  if (p === '/imports') return { name: 'imports' };
  const src = /^\/sources\/([^/]+)$/.exec(p);
  if (src) return { name: 'sources', id: decodeURIComponent(src[1]) };
  const inc = /^\/incidents\/([1-9]\d{0,15})$/.exec(p);
  if (inc) return { name: 'incident', id: Number(inc[1]) };
  const m = /^\/domains\/([^/]+)$/.exec(p);
  if (m) return { name: 'domain', code: decodeURIComponent(m[1]) };
  return { name: 'not_found' };
}

class Router {
  path = $state(typeof location === 'undefined' ? '/' : location.pathname);
  search = $state(typeof location === 'undefined' ? '' : location.search);
  route = $derived(parseRoute(this.path));

  constructor() {
    if (typeof window !== 'undefined') {
      window.addEventListener('popstate', () => this.sync());
      document.addEventListener('click', (e) => this.intercept(e));
    }
  }

  private sync(): void {
    this.path = location.pathname;
    this.search = location.search;
  }

  /** Goes to `to` (a path with optional query) without reloading. */
  navigate(to: string, replace = false): void {
    if (replace) history.replaceState(null, '', to);
    else history.pushState(null, '', to);
    this.sync();
    window.scrollTo?.(0, 0);
  }

  params(): URLSearchParams {
    return new URLSearchParams(this.search);
  }

  /** Same-origin links move within the app rather than reloading it. */
  private intercept(e: MouseEvent): void {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a');
    if (!a || a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (a.pathname.startsWith('/api/') || a.dataset.reload !== undefined) return;
    e.preventDefault();
    this.navigate(a.pathname + a.search);
  }
}

export const router = new Router();
