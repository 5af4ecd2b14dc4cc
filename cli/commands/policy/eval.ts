// `hoop policy eval`: decide one request (a SQL text, possibly several statements, or a shell line)
// and say why: the verdict, the deciding rules, and with --explain every rule's outcome and the
// facts the decision was made over.
import type { Command } from 'commander';
import { combineDecisions, type Explanation } from '../../../engine/index.ts';
import { explainAsGateway, TEST_CONTEXT } from '../../../engine/tester/runner.ts';
import { withEstimate, type Action, type Request, type ResourceKind } from '../../../stdlib/facts.ts';
import { loadClassifiers, loadPolicy, reportDiagnostics } from '../../load.ts';
import { renderExplanation } from '../../report/tests.ts';
import { usageError } from '../../usage.ts';
import { escapeControls, jsonForTerminal, oneLine } from '../../../stdlib/terminal-text.ts';

interface Options {
  policy: string[];
  sub: string;
  groups: string;
  actor?: string;
  claims?: string;
  resource: string;
  sql?: string;
  shell?: string;
  clientAddr: string;
  time?: string;
  explain?: boolean;
  json?: boolean;
  estimateRows?: string;
  estimateCost?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

export function registerEval(policy: Command): void {
  policy
    .command('eval')
    .description('decide one request and explain the verdict')
    .argument('[paths...]', '.hoop files or folders (or use --policy)')
    .option('--policy <path>', 'policy file or folder (repeatable)', collect, [])
    .requiredOption('--sub <id>', 'the identity (`sub`)')
    .option('--groups <a,b>', 'comma-separated groups', '')
    .option('--actor <name>', 'the human or workflow the agent acts for (`act.sub`)')
    .option('--claims <json>', 'extra token claims as a JSON object')
    .requiredOption('--resource <kind:name>', 'e.g. postgres:prod-main or ssh:bastion-1')
    .option('--sql <text>', 'SQL text (several statements allowed)')
    .option('--shell <line>', 'a shell command line (for ssh resources)')
    .option('--client-addr <addr>', 'context.client_addr', '127.0.0.1')
    .option('--time <iso>', 'context.time (default: now)')
    .option('--estimate-rows <n>', 'sql.estimate.rows: the rows the planner expects (what the gateway gets from EXPLAIN)')
    .option('--estimate-cost <c>', 'sql.estimate.cost: the plan\'s total cost')
    .option('--explain', 'show every rule considered and the facts used')
    .option('--json', 'print the decision (and explanation) as JSON')
    .action(async (paths: string[], o: Options) => {
      const usage = usageError('policy eval');
      const m = /^(postgres|ssh):(.+)$/.exec(o.resource);
      if (!m) return usage('--resource must look like postgres:NAME or ssh:NAME');
      const kind = m[1] as ResourceKind;
      if ((o.sql === undefined) === (o.shell === undefined)) return usage('give exactly one of --sql or --shell');
      if (o.sql !== undefined && kind !== 'postgres') return usage('--sql needs a postgres resource');
      if (o.shell !== undefined && kind !== 'ssh') return usage('--shell needs an ssh resource');
      let extra: Record<string, unknown> = {};
      if (o.claims) {
        try {
          const parsed: unknown = JSON.parse(o.claims);
          if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
          extra = parsed as Record<string, unknown>;
        } catch (e) {
          return usage(`--claims must be a JSON object: ${(e as Error).message}`);
        }
      }
      const loaded = await loadPolicy([...paths, ...o.policy]);
      if (reportDiagnostics(loaded, o.json ? 'json' : 'human') || !loaded.policy) {
        process.exitCode = 2;
        return;
      }
      let estimate: { rows: number; cost: number } | undefined;
      if (o.estimateRows !== undefined || o.estimateCost !== undefined) {
        const rows = Number(o.estimateRows ?? 0);
        const cost = Number(o.estimateCost ?? 0);
        if (!Number.isFinite(rows) || rows < 0 || !Number.isFinite(cost) || cost < 0) return usage('--estimate-rows and --estimate-cost take non-negative numbers');
        estimate = { rows, cost };
      }
      const classifiers = await loadClassifiers();
      let actions: Action[] = o.sql !== undefined ? classifiers.sql.classify(o.sql) : [classifiers.shell.classify(o.shell!)];
      actions = actions.map((a) => (a.type !== 'sql' ? a : withEstimate(a, estimate ?? { error: 'give --estimate-rows and --estimate-cost to stand for the upstream\'s EXPLAIN' })));
      if (actions.length === 0) return usage('the SQL text holds no statement');
      const groups = o.groups.split(',').map((g) => g.trim()).filter(Boolean);
      const identity = { sub: o.sub, groups, actor: o.actor, claims: { ...extra, sub: o.sub, groups, ...(o.actor ? { act: { sub: o.actor } } : {}) } };
      const context = { ...TEST_CONTEXT, session_id: 'eval', client_addr: o.clientAddr, time: o.time ?? new Date().toISOString() };
      const requests: Request[] = actions.map((action) => ({ identity, resource: { kind, name: m[2]!, labels: {} }, action, context }));
      const explanations: Explanation[] = requests.map((r) => explainAsGateway(loaded.policy!, r, classifiers));
      const decision = combineDecisions(explanations.map((e) => e.decision));
      if (o.json) {
        const out = { decision, statements: explanations.map((e) => (o.explain ? e : { decision: e.decision, facts: e.facts })) };
        process.stdout.write(`${jsonForTerminal(out, 2)}\n`);
        return;
      }
      const lines: string[] = [];
      explanations.forEach((e, i) => {
        const action = requests[i]!.action;
        lines.push(`statement ${i + 1}: ${oneLine(action.text)}`);
        if (o.explain) lines.push(`  facts: ${JSON.stringify(factsSummary(action))}`);
        const ex = renderExplanation(e, '  ');
        lines.push(...(o.explain ? ex : ex.filter((l) => !l.startsWith('    '))));
      });
      if (explanations.length > 1) lines.push(`overall: ${decision.verdict}${decision.message ? `: ${decision.message}` : ''}`);
      process.stdout.write(`${lines.map(escapeControls).join('\n')}\n`);
    });
}

function factsSummary(a: Action): Record<string, unknown> {
  if (a.type === 'sql') {
    const { type: _t, text: _x, ...rest } = a;
    return rest;
  }
  const { type: _t, text: _x, ...rest } = a;
  return rest;
}
