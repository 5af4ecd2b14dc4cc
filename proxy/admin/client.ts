// A small client for the admin API (used by `hoop approvals`). Failures are coded values.

import type { ApprovalRecord, ApprovalStatus } from '../ports.ts';

export interface AdminClientError {
  ok: false;
  /** HTTP status (0 when the gateway could not be reached). */
  status: number;
  code: string;
  message: string;
}

export type AdminResult<T> = { ok: true; value: T } | AdminClientError;

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  list(status?: ApprovalStatus): Promise<AdminResult<ApprovalRecord[]>> {
    const q = status ? `?status=${encodeURIComponent(status)}` : '';
    return this.call<{ approvals: ApprovalRecord[] }>('GET', `/approvals${q}`).then((r) => (r.ok ? { ok: true, value: r.value.approvals } : r));
  }

  decide(id: string, decision: 'approve' | 'deny', reason?: string): Promise<AdminResult<ApprovalRecord>> {
    return this.call<{ approval: ApprovalRecord }>('POST', `/approvals/${encodeURIComponent(id)}/${decision}`, reason ? { reason } : {}).then((r) =>
      r.ok ? { ok: true, value: r.value.approval } : r,
    );
  }

  /** A one-time sign-in link for the approvals page (`hoop approvals open`): its full URL. */
  link(): Promise<AdminResult<{ url: string; expires_at: string }>> {
    return this.call<{ path: string; expires_at: string }>('POST', '/ui/links', {}).then((r) =>
      r.ok ? { ok: true, value: { url: new URL(r.value.path, this.baseUrl).toString(), expires_at: r.value.expires_at } } : r,
    );
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<AdminResult<T>> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, status: 0, code: 'unreachable', message: `cannot reach the gateway admin API at ${this.baseUrl}${cause ? ` (${cause})` : ''}` };
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { ok: false, status: res.status, code: 'bad_response', message: `unexpected response from ${this.baseUrl} (HTTP ${res.status})` };
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string } }).error;
      return { ok: false, status: res.status, code: e?.code ?? `http_${res.status}`, message: e?.message ?? `HTTP ${res.status}` };
    }
    return { ok: true, value: json as T };
  }
}
