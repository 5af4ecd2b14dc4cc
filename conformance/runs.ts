// How many cases each fast-check property runs. The default keeps `npm test` quick; set
// HOOP_PROPERTY_RUNS (e.g. 100000) for a long soak. A value below the default is ignored so a
// typo cannot silently weaken CI.

export const DEFAULT_PROPERTY_RUNS = 2000;

export function propertyRuns(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.HOOP_PROPERTY_RUNS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_PROPERTY_RUNS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < DEFAULT_PROPERTY_RUNS) return DEFAULT_PROPERTY_RUNS;
  return n;
}

/**
 * A vitest timeout for a property test: fast-check runs synchronously, so a long soak
 * (HOOP_PROPERTY_RUNS) needs a budget that grows with the number of runs.
 */
export function propertyTimeout(msPerRun = 100, env: NodeJS.ProcessEnv = process.env): number {
  return Math.max(180_000, propertyRuns(env) * msPerRun);
}
