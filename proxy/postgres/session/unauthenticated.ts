// Connections that have not authenticated yet, counted per client address, so one peer without a
// token cannot hold every socket and buffer of the gateway (each refusal is audited by the session).

export class UnauthenticatedConnections {
  private readonly byAddr = new Map<string, number>();

  constructor(private readonly maxPerClient: number) {}

  /** Counts a new connection from `addr`; false (nothing counted) when `addr` is at its limit. */
  acquire(addr: string): boolean {
    const n = this.byAddr.get(addr) ?? 0;
    if (n >= this.maxPerClient) return false;
    this.byAddr.set(addr, n + 1);
    return true;
  }

  release(addr: string): void {
    const n = this.byAddr.get(addr) ?? 0;
    if (n <= 1) this.byAddr.delete(addr);
    else this.byAddr.set(addr, n - 1);
  }

  /** Unauthenticated connections now open from `addr`. */
  count(addr: string): number {
    return this.byAddr.get(addr) ?? 0;
  }
}
