// Vietnamese by default, English on request. The choice is remembered in
// localStorage and can be forced with ?lang=en (useful for the wall).

import { messages, type Lang, type MessageKey } from './messages';

function initial(): Lang {
  try {
    const q = new URLSearchParams(globalThis.location?.search ?? '').get('lang');
    if (q === 'en' || q === 'vi') return q;
    const s = globalThis.localStorage?.getItem('panorama.lang');
    if (s === 'en' || s === 'vi') return s;
  } catch {
    // Storage can be disabled (kiosk profiles): fall back to Vietnamese.
  }
  return 'vi';
}

class I18n {
  lang = $state<Lang>(initial());

  set(l: Lang): void {
    this.lang = l;
    try {
      globalThis.localStorage?.setItem('panorama.lang', l);
    } catch {
      // Not remembered, still switched.
    }
    if (typeof document !== 'undefined') document.documentElement.lang = l;
  }

  /** BCP 47 locale for Intl formatting. */
  get locale(): string {
    return this.lang === 'vi' ? 'vi-VN' : 'en-GB';
  }
}

export const i18n = new I18n();

/** Translates `key`, replacing `{name}` placeholders with `params`. */
export function t(key: MessageKey, params?: Record<string, string | number>): string {
  return translate(i18n.lang, key, params);
}

/** Pure translation, for tests and non-reactive code. */
export function translate(lang: Lang, key: MessageKey, params?: Record<string, string | number>): string {
  let s: string = messages[lang][key] ?? messages.vi[key] ?? key;
  if (params) {
    for (const [k, v] of Object.entries(params)) s = s.replaceAll(`{${k}}`, String(v));
  }
  return s;
}

/** Picks the Vietnamese or English name of a thing that has both. */
export function nameOf(x: { name: string; name_en?: string | null } | undefined | null): string {
  if (!x) return '';
  return i18n.lang === 'en' && x.name_en ? x.name_en : x.name;
}
