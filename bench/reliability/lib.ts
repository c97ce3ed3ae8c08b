/**
 * Shared by the reliability figure scripts: one row per goal (command, figure, PASS/MISS), a
 * markdown table, and "run me alone" detection so each script also works by itself.
 */
import { pathToFileURL } from 'node:url';

export interface Row {
  goal: string;
  command: string;
  figure: string;
  verdict: 'PASS' | 'MISS' | 'PARTIAL' | 'see chaos';
}

export function table(rows: readonly Row[]): string {
  const lines = ['| goal | command | measured here | verdict |', '|---|---|---|---|'];
  for (const r of rows)
    lines.push(
      `| ${r.goal} | \`${r.command}\` | ${r.figure.replace(/\|/g, '\\|')} | **${r.verdict}** |`,
    );
  return lines.join('\n');
}

/** True when `meta` is the module node was started with. */
export function isMain(meta: ImportMeta): boolean {
  return process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === meta.url;
}

export const ms = (n: number) => `${n.toFixed(n < 10 ? 1 : 0)} ms`;
export const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
