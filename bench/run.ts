// `npm run bench`: runs every bench/*.bench.ts in its own process (so one bench's heap and JIT state
// do not colour the next), one after the other, and prints their reports. `--json` is passed through;
// `--only NAME` runs one bench (e.g. `--only engine`).

import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;
const passthrough = args.filter((a, i) => i !== onlyIdx && i !== onlyIdx + 1);

const benches = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !only || f === `${only}.bench.ts`)
  .sort();
if (benches.length === 0) {
  process.stderr.write(`no benchmarks found${only ? ` named ${only}` : ''}\n`);
  process.exit(2);
}
const tsx = join(here, '..', 'node_modules', 'tsx', 'dist', 'cli.mjs');
let failed = 0;
for (const b of benches) {
  process.stdout.write(`\n=== ${b.replace('.bench.ts', '')} ===\n`);
  const r = spawnSync(process.execPath, ['--expose-gc', tsx, join(here, b), ...passthrough], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`bench ${b} exited with ${r.status}\n`);
  }
}
process.exit(failed ? 1 : 0);
