/**
 * A minimal PromQL evaluator over scrapes kept in memory, for drawing the Grafana dashboard without
 * Prometheus: exactly the forms docs/grafana/wheremachines.json uses (selectors with =, !=, =~, !~;
 * rate and increase over a range; sum/min/max/avg/count with or without `by`; histogram_quantile).
 * Anything else is refused with `Unsupported`, so a panel can say so instead of drawing a guess.
 */

export type Labels = Record<string, string>;

/** One scraped sample: a metric name, its labels, its value. */
export interface ScrapedSample {
  name: string;
  labels: Labels;
  value: number;
}

/** Every sample of one scrape, at `t` (seconds, any origin). */
export interface Scrape {
  t: number;
  samples: readonly ScrapedSample[];
}

/** One element of an instant vector: a series' labels (without `__name__`) and its value. */
export interface Point {
  labels: Labels;
  value: number;
}

export class Unsupported extends Error {}

interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}
type Node =
  | { kind: 'number'; value: number }
  | { kind: 'selector'; name: string; matchers: Matcher[] }
  | {
      kind: 'range';
      fn: 'rate' | 'increase';
      selector: Node & { kind: 'selector' };
      seconds: number;
    }
  | { kind: 'aggregate'; op: Aggregation; by: string[] | undefined; arg: Node }
  | { kind: 'quantile'; q: number; arg: Node };

const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'count'] as const;
type Aggregation = (typeof AGGREGATIONS)[number];
const TOKEN =
  /\s*(?:(\d+(?:\.\d+)?(?:ms|s|m|h)?)|([a-zA-Z_:][a-zA-Z0-9_:]*)|("(?:[^"\\]|\\.)*")|(=~|!~|!=|[=(){}[\],]))/y;

function tokenize(text: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    const start = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) {
      if (text.slice(start).trim() === '') break;
      throw new Unsupported(`cannot read "${text.slice(start).trim()}"`);
    }
    out.push(m[1] ?? m[2] ?? m[3] ?? m[4]!);
  }
  return out;
}

/** `30s`, `5m`, `1h`, `500ms` in seconds. */
function durationSeconds(token: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(token);
  if (!m) throw new Unsupported(`"${token}" is not a duration`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: string[]) {}

  parse(): Node {
    const node = this.expr();
    if (this.i < this.tokens.length)
      throw new Unsupported(`unexpected "${this.tokens[this.i]}" after a complete expression`);
    return node;
  }

  private peek(): string | undefined {
    return this.tokens[this.i];
  }

  private take(want?: string): string {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new Unsupported('the expression ends too soon');
    if (want !== undefined && t !== want) throw new Unsupported(`expected "${want}", got "${t}"`);
    return t;
  }

  private labelList(): string[] {
    this.take('(');
    const names: string[] = [];
    while (this.peek() !== ')') {
      names.push(this.take());
      if (this.peek() === ',') this.take(',');
    }
    this.take(')');
    return names;
  }

  private expr(): Node {
    const t = this.take();
    if (/^\d/.test(t)) return { kind: 'number', value: Number(t) };
    if ((AGGREGATIONS as readonly string[]).includes(t)) {
      let by = this.peek() === 'by' ? (this.take(), this.labelList()) : undefined;
      this.take('(');
      const arg = this.expr();
      this.take(')');
      if (this.peek() === 'by') {
        this.take();
        by = this.labelList();
      }
      return { kind: 'aggregate', op: t as Aggregation, by, arg };
    }
    if (t === 'rate' || t === 'increase') {
      this.take('(');
      const selector = this.selector(this.take());
      this.take('[');
      const seconds = durationSeconds(this.take());
      this.take(']');
      this.take(')');
      return { kind: 'range', fn: t, selector, seconds };
    }
    if (t === 'histogram_quantile') {
      this.take('(');
      const q = Number(this.take());
      this.take(',');
      const arg = this.expr();
      this.take(')');
      return { kind: 'quantile', q, arg };
    }
    if (this.peek() === '(') throw new Unsupported(`function "${t}" is not evaluated here`);
    return this.selector(t);
  }

  private selector(name: string): Node & { kind: 'selector' } {
    if (!/^[a-zA-Z_:]/.test(name)) throw new Unsupported(`"${name}" is not a metric name`);
    const matchers: Matcher[] = [];
    if (this.peek() === '{') {
      this.take('{');
      while (this.peek() !== '}') {
        const label = this.take();
        const op = this.take();
        if (op !== '=' && op !== '!=' && op !== '=~' && op !== '!~')
          throw new Unsupported(`"${op}" is not a label matcher`);
        const raw = this.take();
        if (!raw.startsWith('"')) throw new Unsupported(`label value ${raw} is not quoted`);
        matchers.push({ label, op, value: JSON.parse(raw) as string });
        if (this.peek() === ',') this.take(',');
      }
      this.take('}');
    }
    return { kind: 'selector', name, matchers };
  }
}

/** Parse one expression; Grafana's variables (`$region`, `$__rate_interval`) must be replaced first. */
export function parseExpr(text: string): Node {
  if (text.includes('$')) throw new Unsupported(`unreplaced variable in ${text}`);
  return new Parser(tokenize(text)).parse();
}

/** Replace `$name` and `${name}` by `vars[name]` (unknown names stay as they are). */
export function substitute(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{?(\w+)\}?/g, (whole, name: string) => vars[name] ?? whole);
}

function matches(labels: Labels, m: Matcher): boolean {
  const v = labels[m.label] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return new RegExp(`^(?:${m.value})$`).test(v);
    case '!~':
      return !new RegExp(`^(?:${m.value})$`).test(v);
  }
}

const seriesKey = (labels: Labels): string =>
  JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

function select(scrape: Scrape, sel: Node & { kind: 'selector' }): Point[] {
  return scrape.samples
    .filter((s) => s.name === sel.name && sel.matchers.every((m) => matches(s.labels, m)))
    .map((s) => ({ labels: { ...s.labels }, value: s.value }));
}

/**
 * `increase` over the samples inside (t − range, t]: the sum of the rises, a fall being a counter
 * reset (the new value counts from zero). `rate` is that over the time between the first and last
 * sample. Unlike Prometheus this does not extrapolate to the edges of the range: with a scrape
 * every few seconds the difference is small, and known samples give known answers.
 */
function rangeFunction(node: Node & { kind: 'range' }, scrapes: readonly Scrape[], at: number) {
  const t = scrapes[at]!.t;
  const window = scrapes.filter((s, i) => i <= at && s.t > t - node.seconds);
  const series = new Map<string, { labels: Labels; values: { t: number; v: number }[] }>();
  for (const s of window) {
    for (const p of select(s, node.selector)) {
      const key = seriesKey(p.labels);
      const entry = series.get(key) ?? { labels: p.labels, values: [] };
      entry.values.push({ t: s.t, v: p.value });
      series.set(key, entry);
    }
  }
  const out: Point[] = [];
  for (const { labels, values } of series.values()) {
    if (values.length < 2) continue;
    let rise = 0;
    for (let i = 1; i < values.length; i++) {
      const d = values[i]!.v - values[i - 1]!.v;
      rise += d >= 0 ? d : values[i]!.v;
    }
    const span = values.at(-1)!.t - values[0]!.t;
    out.push({ labels, value: node.fn === 'increase' ? rise : rise / span });
  }
  return out;
}

function aggregate(op: Aggregation, by: string[] | undefined, input: Point[]): Point[] {
  const groups = new Map<string, { labels: Labels; values: number[] }>();
  for (const p of input) {
    const labels: Labels = {};
    for (const name of by ?? []) if (p.labels[name] !== undefined) labels[name] = p.labels[name];
    const key = seriesKey(labels);
    const g = groups.get(key) ?? { labels, values: [] };
    g.values.push(p.value);
    groups.set(key, g);
  }
  return [...groups.values()].map(({ labels, values }) => {
    const sum = values.reduce((a, b) => a + b, 0);
    const value = {
      sum,
      min: Math.min(...values),
      max: Math.max(...values),
      avg: sum / values.length,
      count: values.length,
    }[op];
    return { labels, value };
  });
}

/** Prometheus's bucket interpolation: the rank's place inside the bucket that holds it. */
export function bucketQuantile(q: number, buckets: { le: number; count: number }[]): number {
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  if (sorted.length < 2 || sorted.at(-1)!.le !== Infinity) return NaN;
  // Counts that fall (float noise in rates) are lifted to the running maximum.
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.count < sorted[i - 1]!.count) sorted[i]!.count = sorted[i - 1]!.count;
  const total = sorted.at(-1)!.count;
  if (!(total > 0)) return NaN;
  let rank = q * total;
  const b = sorted.findIndex((x) => x.count >= rank);
  if (b === sorted.length - 1) return sorted[b - 1]!.le;
  if (b === 0 && sorted[0]!.le <= 0) return sorted[0]!.le;
  const start = b === 0 ? 0 : sorted[b - 1]!.le;
  let count = sorted[b]!.count;
  if (b > 0) {
    count -= sorted[b - 1]!.count;
    rank -= sorted[b - 1]!.count;
  }
  return start + (sorted[b]!.le - start) * (rank / count);
}

function quantile(q: number, input: Point[]): Point[] {
  const groups = new Map<string, { labels: Labels; buckets: { le: number; count: number }[] }>();
  for (const p of input) {
    const { le, ...labels } = p.labels;
    if (le === undefined) continue;
    const key = seriesKey(labels);
    const g = groups.get(key) ?? { labels, buckets: [] };
    g.buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: p.value });
    groups.set(key, g);
  }
  return [...groups.values()]
    .map(({ labels, buckets }) => ({ labels, value: bucketQuantile(q, buckets) }))
    .filter((p) => !Number.isNaN(p.value));
}

function evalNode(node: Node, scrapes: readonly Scrape[], at: number): Point[] {
  switch (node.kind) {
    case 'number':
      return [{ labels: {}, value: node.value }];
    case 'selector':
      return select(scrapes[at]!, node);
    case 'range':
      return rangeFunction(node, scrapes, at);
    case 'aggregate':
      return aggregate(node.op, node.by, evalNode(node.arg, scrapes, at));
    case 'quantile':
      return quantile(node.q, evalNode(node.arg, scrapes, at));
  }
}

/** The instant vector of `expr` at scrape `at` (an index into `scrapes`, oldest first). */
export function evaluateAt(expr: string, scrapes: readonly Scrape[], at: number): Point[] {
  return evalNode(parseExpr(expr), scrapes, at);
}

/** A series over time, as a panel draws it: one value per scrape where the series had one. */
export interface TimeSeries {
  labels: Labels;
  points: { t: number; value: number }[];
}

/** `expr` evaluated at every scrape, its results joined by labels into series. */
export function evaluateRange(expr: string, scrapes: readonly Scrape[]): TimeSeries[] {
  const node = parseExpr(expr);
  const series = new Map<string, TimeSeries>();
  scrapes.forEach((s, at) => {
    for (const p of evalNode(node, scrapes, at)) {
      const key = seriesKey(p.labels);
      const entry = series.get(key) ?? { labels: p.labels, points: [] };
      entry.points.push({ t: s.t, value: p.value });
      series.set(key, entry);
    }
  });
  return [...series.values()];
}

/** Grafana's `{{label}}` legend format. */
export function legend(format: string | undefined, labels: Labels): string {
  if (!format) return seriesKey(labels);
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_w, name: string) => labels[name] ?? '').trim();
}
