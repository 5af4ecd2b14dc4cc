// Gateway metrics in the Prometheus text exposition format (version 0.0.4). Recording a sample is
// a few array/number updates: this runs once per statement on the hot path.

import type { GatewayMetrics } from './ports.ts';
import type { Verdict } from '../engine/response.ts';

/** Decision latency buckets, seconds: the engine decides in microseconds, approvals can take minutes. */
export const LATENCY_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];

const VERDICTS: Verdict[] = ['allow', 'mask', 'approve', 'block'];

export interface Metrics extends GatewayMetrics {
  /** Extra gauges/counters from other parts of the gateway (e.g. policy reloads). */
  count(name: string, help: string, labels?: Record<string, string>, by?: number): void;
  /** A gauge read when /metrics is scraped (state another part owns, e.g. the audit log's sync mode). */
  gauge(name: string, help: string, read: () => number): void;
}

export function createMetrics(): Metrics {
  const decisions = new Map<string, number>(VERDICTS.map((v) => [v, 0]));
  const buckets = new Array<number>(LATENCY_BUCKETS.length).fill(0);
  let latencySum = 0;
  let latencyCount = 0;
  let sessionsOpen = 0;
  let sessionsTotal = 0;
  const refused = new Map<string, number>();
  let shadowAgreed = 0;
  const shadowDisagreed = new Map<string, number>();
  const extra = new Map<string, { help: string; values: Map<string, number> }>();
  const gauges = new Map<string, { help: string; read: () => number }>();
  const started = Date.now();

  return {
    decision(verdict, latencySeconds) {
      decisions.set(verdict, (decisions.get(verdict) ?? 0) + 1);
      // Non-cumulative per bucket here; made cumulative when rendered.
      let i = 0;
      while (i < LATENCY_BUCKETS.length && latencySeconds > LATENCY_BUCKETS[i]) i++;
      if (i < LATENCY_BUCKETS.length) buckets[i]++;
      latencySum += latencySeconds;
      latencyCount++;
    },
    sessionOpened() {
      sessionsOpen++;
      sessionsTotal++;
    },
    sessionClosed() {
      if (sessionsOpen > 0) sessionsOpen--;
    },
    connectionRefused(reason) {
      refused.set(reason, (refused.get(reason) ?? 0) + 1);
    },
    shadowDecision(active, shadow) {
      if (shadow === undefined) {
        shadowAgreed++;
        return;
      }
      const key = `${active}\u0000${shadow}`;
      shadowDisagreed.set(key, (shadowDisagreed.get(key) ?? 0) + 1);
    },
    count(name, help, labels = {}, by = 1) {
      if (!extra.has(name)) extra.set(name, { help, values: new Map() });
      const key = labelText(labels);
      const m = extra.get(name)!.values;
      m.set(key, (m.get(key) ?? 0) + by);
    },
    gauge(name, help, read) {
      gauges.set(name, { help, read });
    },
    render() {
      const out: string[] = [];
      out.push('# HELP hoop_decisions_total Statements decided, by verdict.', '# TYPE hoop_decisions_total counter');
      for (const [v, n] of decisions) out.push(`hoop_decisions_total{verdict="${v}"} ${n}`);
      out.push('# HELP hoop_decision_duration_seconds Time to classify and decide one statement.', '# TYPE hoop_decision_duration_seconds histogram');
      let cum = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cum += buckets[i];
        out.push(`hoop_decision_duration_seconds_bucket{le="${le}"} ${cum}`);
      });
      out.push(`hoop_decision_duration_seconds_bucket{le="+Inf"} ${latencyCount}`);
      out.push(`hoop_decision_duration_seconds_sum ${latencySum}`, `hoop_decision_duration_seconds_count ${latencyCount}`);
      out.push('# HELP hoop_sessions_open Client sessions currently open.', '# TYPE hoop_sessions_open gauge', `hoop_sessions_open ${sessionsOpen}`);
      out.push('# HELP hoop_sessions_total Client sessions opened since start.', '# TYPE hoop_sessions_total counter', `hoop_sessions_total ${sessionsTotal}`);
      out.push('# HELP hoop_connections_refused_total Connections refused, by reason.', '# TYPE hoop_connections_refused_total counter');
      for (const [r, n] of [...refused].sort()) out.push(`hoop_connections_refused_total{reason="${escapeLabel(r)}"} ${n}`);
      if (shadowAgreed > 0 || shadowDisagreed.size > 0) {
        out.push('# HELP hoop_shadow_agreements_total Requests the shadow policy would have enforced the same way.', '# TYPE hoop_shadow_agreements_total counter', `hoop_shadow_agreements_total ${shadowAgreed}`);
        out.push('# HELP hoop_shadow_disagreements_total Requests the shadow policy would have enforced differently, by active and shadow verdict.', '# TYPE hoop_shadow_disagreements_total counter');
        for (const [key, n] of [...shadowDisagreed].sort()) {
          const [a, b] = key.split('\u0000');
          out.push(`hoop_shadow_disagreements_total{active="${a}",shadow="${b}"} ${n}`);
        }
      }
      for (const [name, { help, values }] of extra) {
        out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
        for (const [labels, n] of values) out.push(`${name}${labels} ${n}`);
      }
      for (const [name, { help, read }] of gauges) {
        let value: number;
        try {
          value = read();
        } catch {
          value = Number.NaN;
        }
        out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${Number.isFinite(value) ? value : 'NaN'}`);
      }
      out.push('# HELP hoop_start_time_seconds When the gateway started.', '# TYPE hoop_start_time_seconds gauge', `hoop_start_time_seconds ${Math.floor(started / 1000)}`);
      return out.join('\n') + '\n';
    },
  };
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}` : '';
}
