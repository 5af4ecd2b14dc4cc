// Path normalisation for file operations on ssh resources: what `match sftp ... on paths` sees.

/** `p` made absolute against `cwd`, with `.`, `..` and repeated `/` resolved (never above `/`). */
export function normalisePath(p: string, cwd: string): string {
  const abs = p.startsWith('/') ? p : `${cwd.replace(/\/+$/, '')}/${p}`;
  const out: string[] = [];
  for (const part of abs.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}
