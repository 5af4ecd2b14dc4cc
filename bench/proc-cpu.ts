// CPU time of a process and all its descendants, from /proc/<pid>/stat (Linux): utime + stime of
// every live process in the tree (threads are counted in their process), plus each one's cutime +
// cstime (its children that exited and were waited for). Measured before and after a run, the difference is
// what the proxy cost during it, whatever else runs on the machine — a steadier figure than
// throughput on a shared 2-CPU box.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

interface Stat {
  pid: number;
  ppid: number;
  /** utime + stime, ticks */
  own: number;
  /** cutime + cstime, ticks */
  children: number;
}

function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: fields start after its ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): field n is rest[n - 3].
  return { pid, ppid: Number(rest[1]), own: Number(rest[11]) + Number(rest[12]), children: Number(rest[13]) + Number(rest[14]) };
}

/** CPU seconds used so far by `root` and its descendants. */
export function treeCpuSeconds(root: number): number {
  const all: Stat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) all.push(s);
  }
  const byParent = new Map<number, Stat[]>();
  for (const s of all) byParent.set(s.ppid, [...(byParent.get(s.ppid) ?? []), s]);
  const rootStat = all.find((s) => s.pid === root);
  if (!rootStat) throw new Error(`process ${root} is gone`);
  // A process's exited children are in its cutime; the live ones are counted themselves.
  let ticks = 0;
  const stack = [rootStat];
  while (stack.length > 0) {
    const s = stack.pop()!;
    ticks += s.own + s.children;
    for (const c of byParent.get(s.pid) ?? []) stack.push(c);
  }
  return ticks / TICKS_PER_SECOND;
}
