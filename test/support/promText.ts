/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests that scrape /metrics:
 * HELP and TYPE lines (once each, before the family's samples), metric and label name syntax, label
 * value escapes, values, one family's samples together, no duplicate series, and for histograms
 * `le` buckets that never decrease, a `+Inf` bucket equal to `_count`, and a `_sum`. Throws on the
 * first violation, naming the line.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A value as Prometheus reads it (Go's ParseFloat: NaN and Inf in any case, e.g. prom-client's "Nan"). */
function parseValue(text: string, where: string): number {
  const t = text.toLowerCase();
  if (t === '+inf' || t === 'inf' || t === '+infinity' || t === 'infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  if (t === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text))
    throw new Error(`${where}: "${text}" is not a sample value`);
  return Number(text);
}

/** `{a="x",b="y\"z"}` starting at `s[i] === '{'`: the labels and the index after `}`. */
function parseLabels(s: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  for (;;) {
    if (s[i] === '}') return [labels, i + 1];
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without "="`);
    const name = s.slice(i, eq);
    if (!LABEL_NAME.test(name) || name.startsWith('__'))
      throw new Error(`${where}: bad label name "${name}"`);
    if (name in labels) throw new Error(`${where}: label "${name}" twice`);
    if (s[eq + 1] !== '"') throw new Error(`${where}: label value of "${name}" is not quoted`);
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = s[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = s[j + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else throw new Error(`${where}: bad escape "\\${n ?? ''}" in a label value`);
        j += 2;
        continue;
      }
      if (c === '\n') throw new Error(`${where}: raw newline in a label value`);
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (s[i] === ',') i++;
    else if (s[i] !== '}') throw new Error(`${where}: expected "," or "}" after label "${name}"`);
  }
}

/** The family a sample name belongs to, given its declared type. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const f = families.get(name.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return undefined;
}

const seriesKey = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;

export function parsePromText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const finished = new Set<string>();
  let current: Family | undefined;
  if (text.length > 0 && !text.endsWith('\n'))
    throw new Error('the exposition must end with a newline');
  const lines = text.split('\n');
  lines.pop();
  const declare = (name: string, where: string): Family => {
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
    let f = families.get(name);
    if (!f) {
      f = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, f);
    } else if (f.samples.length > 0) {
      throw new Error(`${where}: HELP or TYPE of "${name}" after its samples`);
    }
    if (current && current !== f) finished.add(current.name);
    if (finished.has(name)) throw new Error(`${where}: family "${name}" is split`);
    current = f;
    return f;
  };
  const typed = new Set<string>();
  const helped = new Set<string>();
  lines.forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      const f = declare(name!, where);
      if (kind === 'HELP') {
        if (helped.has(name!)) throw new Error(`${where}: second HELP for "${name}"`);
        helped.add(name!);
        if (/\\(?![\\n])/.test(rest)) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      } else {
        if (typed.has(name!)) throw new Error(`${where}: second TYPE for "${name}"`);
        typed.add(name!);
        if (!TYPES.has(rest as MetricType)) throw new Error(`${where}: unknown type "${rest}"`);
        f.type = rest as MetricType;
      }
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`${where}: not a sample: "${line}"`);
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) throw new Error(`${where}: bad metric name "${name}"`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length < 1 || parts.length > 2 || parts[0] === '')
      throw new Error(`${where}: expected "value [timestamp]"`);
    const value = parseValue(parts[0]!, where);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1]))
      throw new Error(`${where}: bad timestamp "${parts[1]}"`);
    let f = familyOf(name, families);
    if (!f) f = declare(name, where);
    if (f !== current) {
      if (finished.has(f.name) || current === undefined || f.samples.length > 0)
        throw new Error(`${where}: samples of "${f.name}" are not together`);
      throw new Error(`${where}: sample of "${f.name}" outside its family`);
    }
    if (f.type === 'histogram' && name.endsWith('_bucket') && !('le' in labels))
      throw new Error(`${where}: histogram bucket without "le"`);
    if ((f.type === 'counter' || name.endsWith('_count')) && !(value >= 0))
      throw new Error(`${where}: "${name}" must be a non-negative number`);
    const key = seriesKey(name, labels);
    if (seen.has(key)) throw new Error(`${where}: series ${key} twice`);
    seen.add(key);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey('', rest);
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`)
      g.buckets.push([parseValue(le!, `${f.name}${key} le`), s.value]);
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else if (s.name === `${f.name}_count`) g.count = s.value;
    else throw new Error(`histogram ${f.name}: unexpected sample ${s.name}`);
  }
  for (const [key, g] of groups) {
    const where = `histogram ${f.name}${key}`;
    if (g.sum === undefined) throw new Error(`${where}: no _sum`);
    if (g.count === undefined) throw new Error(`${where}: no _count`);
    if (g.buckets.length === 0) throw new Error(`${where}: no buckets`);
    for (let i = 1; i < g.buckets.length; i++) {
      const [le0, v0] = g.buckets[i - 1]!;
      const [le1, v1] = g.buckets[i]!;
      if (!(le1 > le0)) throw new Error(`${where}: bucket bounds not increasing (${le0}, ${le1})`);
      if (v1 < v0) throw new Error(`${where}: bucket counts decrease at le=${le1}`);
    }
    const last = g.buckets.at(-1)!;
    if (last[0] !== Infinity) throw new Error(`${where}: no le="+Inf" bucket`);
    if (last[1] !== g.count)
      throw new Error(`${where}: +Inf bucket ${last[1]} ≠ _count ${g.count}`);
  }
}

/**
 * The value of one series: the sample named `name` whose labels are exactly `labels`; 0 when the
 * series is not exported (a labelled counter appears only once it moved).
 */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number {
  const f = familyOf(name, families);
  const want = seriesKey(name, labels);
  const s = f?.samples.find((x) => x.name === name && seriesKey(x.name, x.labels) === want);
  return s?.value ?? 0;
}
