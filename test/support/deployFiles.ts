/**
 * Readers for the deployment files, shared by the deploy tests: a strict TOML subset (fly.toml), a
 * Dockerfile reader (stages, instructions), and the repository root. A construct they do not know
 * fails the test that reads it instead of being misread.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

// ---------------------------------------------------------------- a TOML subset reader

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

/** Drop a `#` comment that is not inside a string. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

/** Split an array body on commas outside strings. */
function splitTopLevel(body: string): string[] {
  const out: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === ',') {
      out.push(body.slice(start, i));
      start = i + 1;
    }
  }
  out.push(body.slice(start));
  return out.map((s) => s.trim()).filter(Boolean);
}

function parseTomlValue(src: string, where: string): TomlValue {
  const v = src.trim();
  if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) return JSON.parse(v) as string;
  if (v.startsWith("'") && v.endsWith("'") && v.length >= 2) return v.slice(1, -1);
  if (v === 'true' || v === 'false') return v === 'true';
  if (/^[+-]?\d[\d_]*(\.\d+)?$/.test(v)) return Number(v.replace(/_/g, ''));
  if (v.startsWith('[') && v.endsWith(']'))
    return splitTopLevel(v.slice(1, -1)).map((x) => parseTomlValue(x, where));
  throw new Error(`${where}: value this reader does not understand: ${v}`);
}

/**
 * Tables, arrays of tables, `key = value` with strings, numbers, booleans and one-line arrays.
 * Anything else throws, so a construct this reader does not know fails the test instead of being misread.
 */
export function parseToml(text: string): TomlTable {
  const root: TomlTable = {};
  let current = root;
  const descend = (path: string[], where: string): TomlTable => {
    let t = root;
    for (const key of path) {
      const next: TomlValue = t[key] ?? (t[key] = {});
      if (Array.isArray(next)) {
        const last = next.at(-1);
        if (last === undefined || typeof last !== 'object' || Array.isArray(last))
          throw new Error(`${where}: ${key} is not a table`);
        t = last;
      } else if (typeof next === 'object') t = next;
      else throw new Error(`${where}: ${key} is a value, not a table`);
    }
    return t;
  };
  text.split(/\r?\n/).forEach((raw, i) => {
    const where = `line ${i + 1}`;
    const line = stripComment(raw).trim();
    if (!line) return;
    let m = /^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]$/.exec(line);
    if (m) {
      const path = m[1]!.split('.');
      const parent = descend(path.slice(0, -1), where);
      const key = path.at(-1)!;
      const list = (parent[key] ??= []);
      if (!Array.isArray(list)) throw new Error(`${where}: ${key} is already a table`);
      const table: TomlTable = {};
      list.push(table);
      current = table;
      return;
    }
    m = /^\[\s*([A-Za-z0-9_.-]+)\s*\]$/.exec(line);
    if (m) {
      current = descend(m[1]!.split('.'), where);
      return;
    }
    m = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (m) {
      const key = m[1]!;
      if (key in current) throw new Error(`${where}: ${key} is defined twice`);
      current[key] = parseTomlValue(m[2]!, where);
      return;
    }
    throw new Error(`${where}: not understood by this reader: ${raw}`);
  });
  return root;
}

// ---------------------------------------------------------------- a Dockerfile reader

export interface Instruction {
  op: string;
  args: string;
}
export interface Stage {
  name: string | undefined;
  from: string;
  instructions: Instruction[];
}

/** Stages with their instructions (continuations joined, comments dropped, global ARGs expanded in FROM). */
export function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full) logical.push(full);
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === 'FROM') {
      const expanded = args.replace(
        /\$\{(\w+)\}|\$(\w+)/g,
        (_all, a: string | undefined, b: string | undefined) => globalArgs[(a ?? b)!] ?? '',
      );
      const f = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(expanded)!;
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else if (stages.length === 0) {
      if (op === 'ARG') {
        const a = /^(\w+)(?:=(.*))?$/.exec(args);
        if (a) globalArgs[a[1]!] = a[2] ?? '';
      }
    } else stages.at(-1)!.instructions.push({ op, args });
  }
  return stages;
}

export const ops = (s: Stage, op: string) =>
  s.instructions.filter((i) => i.op === op).map((i) => i.args);

/** A stage's instructions, its ancestors' first (FROM <earlier stage>). */
export function lineage(stages: Stage[], stage: Stage): Stage[] {
  const parent = stages.find((s) => s.name === stage.from);
  return parent ? [...lineage(stages, parent), stage] : [stage];
}

/** COPY sources of a COPY instruction (flags dropped; exec form or shell form). */
export function copySources(args: string): {
  from: string | undefined;
  sources: string[];
  dest: string;
} {
  const from = /--from=(\S+)/.exec(args)?.[1];
  const rest = args.replace(/--\S+\s*/g, '').trim();
  const parts = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/);
  return { from, sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

/** A string value, or a failure that says what was found instead. */
export function str(t: TomlTable, key: string): string {
  const v = t[key];
  if (typeof v !== 'string')
    throw new Error(`fly.toml: ${key} should be a string, found ${JSON.stringify(v)}`);
  return v;
}
