// Printing a verdict-snapshot comparison (`hoop policy test --snapshot`).
import type { SnapshotDiff, SnapshotEntry } from '../../replay/snapshot.ts';
import { escapeControls, oneLine } from '../../stdlib/terminal-text.ts';

function decisionText(e: SnapshotEntry): string {
  const parts: string[] = [e.verdict];
  if (e.masks?.length) parts.push(`masks [${e.masks.join('; ')}]`);
  if (e.approvers?.length) parts.push(`approvers [${e.approvers.join(', ')}]`);
  parts.push(e.rules.length ? `by ${e.rules.join(', ')}` : '(no rule)');
  return parts.join(' ');
}

export function renderSnapshotDiff(file: string, diff: SnapshotDiff): string {
  const out: string[] = [];
  for (const c of diff.changes) {
    const e = c.now[0]!;
    out.push(`${c.kind === 'new' ? 'NEW    ' : 'CHANGED'} ${e.key}  ${e.sub} on ${e.resource}: ${oneLine(e.text, 160)}`);
    for (const w of c.was) out.push(`          snapshot: ${decisionText(w)}`);
    for (const n of c.now) out.push(`          now:      ${decisionText(n)}`);
  }
  if (diff.changes.length > 0) {
    const changed = diff.changes.filter((c) => c.kind === 'changed').length;
    const added = diff.changes.length - changed;
    out.push('', `snapshot ${file}: ${changed} verdict(s) changed, ${added} statement(s) not in the snapshot`);
    out.push('review them; if they are intended, acknowledge with --update-snapshot and commit the file');
  } else {
    out.push(`snapshot ${file}: every recorded verdict matches`);
  }
  if (diff.stale > 0) out.push(`(${diff.stale} snapshot entr${diff.stale === 1 ? 'y is' : 'ies are'} no longer in the recordings; --update-snapshot drops them)`);
  return `${out.map(escapeControls).join('\n')}\n`;
}
