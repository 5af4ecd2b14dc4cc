// Stage 4, build-tree: index the lowered rules into the decision tree described in engine/tree.ts.
// Rules are inserted in index (= id) order, so every leaf list is sorted and duplicate-free.
// (A rule listing one literal table twice is inserted once per distinct table.)

import { RESOURCE_KINDS, type ResourceKind } from '../../language/ast.ts';
import { isLiteralGlob } from '../../stdlib/glob.ts';
import { literalTables, TREE_VERSION, type ActionNode, type DecisionTree, type IdentityNode, type LoweredRule, type ResourceNode, type TableNode } from '../tree.ts';

const CONCRETE_KINDS = RESOURCE_KINDS.filter((k): k is ResourceKind => k !== 'any');

export function buildTree(rules: readonly LoweredRule[]): DecisionTree {
  const resources = {} as Record<ResourceKind, ResourceNode>;
  const globNodes = {} as Record<ResourceKind, Map<string, ActionNode>>;
  for (const kind of CONCRETE_KINDS) {
    resources[kind] = { exact: dict(), globs: [], any: null };
    globNodes[kind] = new Map();
  }
  for (const rule of rules) {
    const kinds = !rule.on || rule.on.kind === 'any' ? CONCRETE_KINDS : [rule.on.kind];
    for (const kind of kinds) {
      const node = resources[kind];
      const globs = rule.on?.globs ?? [];
      if (globs.length === 0) {
        insertAction((node.any ??= actionNode()), rule);
        continue;
      }
      for (const glob of new Set(globs)) {
        if (isLiteralGlob(glob)) {
          insertAction((node.exact[glob] ??= actionNode()), rule);
        } else {
          let target = globNodes[kind].get(glob);
          if (!target) {
            target = actionNode();
            globNodes[kind].set(glob, target);
            node.globs.push({ glob, node: target });
          }
          insertAction(target, rule);
        }
      }
    }
  }
  return { version: TREE_VERSION, resources };
}

function insertAction(node: ActionNode, rule: LoweredRule): void {
  const match = rule.match;
  if (!match) {
    insertIdentity((node.anyAction ??= identityNode()), rule);
  } else if (match.type === 'sql') {
    if (match.kinds === null) insertTables((node.sqlAnyKind ??= tableNode()), rule);
    else for (const kind of match.kinds) insertTables((node.sqlKinds[kind] ??= tableNode()), rule);
  } else if (match.type === 'shell') {
    if (match.any) insertIdentity((node.shellAny ??= identityNode()), rule);
    else {
      for (const program of match.programs) insertIdentity((node.shellPrograms[program] ??= identityNode()), rule);
      insertIdentity((node.shellAll ??= identityNode()), rule);
    }
  } else {
    insertIdentity((node.ssh ??= identityNode()), rule);
  }
}

function insertTables(node: TableNode, rule: LoweredRule): void {
  const tables = rule.match?.type === 'sql' ? literalTables(rule.match) : null;
  if (tables === null) insertIdentity((node.other ??= identityNode()), rule);
  else for (const table of new Set(tables)) insertIdentity((node.tables[table] ??= identityNode()), rule);
}

function insertIdentity(node: IdentityNode, rule: LoweredRule): void {
  if (rule.when?.attribute === 'group') {
    for (const group of rule.when.values) push((node.groups[group] ??= []), rule.index);
  } else {
    push(node.rest, rule.index);
  }
}

function push(list: number[], index: number): void {
  if (list[list.length - 1] !== index) list.push(index);
}

function actionNode(): ActionNode {
  return { sqlKinds: dict(), sqlAnyKind: null, shellPrograms: dict(), shellAll: null, shellAny: null, ssh: null, anyAction: null };
}

function tableNode(): TableNode {
  return { tables: dict(), other: null };
}

function identityNode(): IdentityNode {
  return { groups: dict(), rest: [] };
}

/** A prototype-free record, so names like `__proto__` or `constructor` are ordinary keys. */
function dict<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
