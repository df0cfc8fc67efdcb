// Whether the server can be reached, over HTTP and over the live socket.

class Connection {
  /** The last HTTP request failed for lack of a server. */
  httpDown = $state(false);
  /** Live socket state. */
  live = $state<'idle' | 'connecting' | 'open' | 'closed'>('idle');
  /** Seconds until the next live reconnect attempt, when closed. */
  retryIn = $state(0);
  /** Whether the live stream told us we missed events (and we resynced). */
  lastResync = $state<number | null>(null);

  httpFailed(): void {
    this.httpDown = true;
  }

  httpOk(): void {
    this.httpDown = false;
  }

  get down(): boolean {
    return this.httpDown || this.live === 'closed';
  }
}

export const connection = new Connection();
