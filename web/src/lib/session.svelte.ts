// Who is signed in. The session itself is the HttpOnly cookie set by
// POST /auth/login; the page only learns the user from /auth/me.

import { ApiError, get, post } from './api';
import type { Session, User } from './types';

class SessionState {
  user = $state<User | null>(null);
  checked = $state(false);

  /** Asks the server who we are; null when not signed in. */
  async refresh(): Promise<User | null> {
    try {
      this.user = await get<User>('/auth/me');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) this.user = null;
      else throw e;
    } finally {
      this.checked = true;
    }
    return this.user;
  }

  async login(username: string, password: string): Promise<User> {
    const s = await post<Session>('/auth/login', { username, password });
    this.user = s.user;
    this.checked = true;
    return s.user;
  }

  async logout(): Promise<void> {
    try {
      await post('/auth/logout');
    } finally {
      this.user = null;
    }
  }
}

export const session = new SessionState();
