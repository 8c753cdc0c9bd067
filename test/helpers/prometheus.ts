/** One sample of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text exposition (comments skipped); throws on a line that is not a sample. */
export function parseMetrics(text: string): Sample[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((line) => {
    const m = LINE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(LABEL)) labels[k] = v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    return { name: m[1], labels, value: Number(m[3]) };
  });
}

/** The sum of the samples named `name` whose labels include `labels` (0 when none). */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);
}

/** The metric families the exposition declares (its `# TYPE name type` lines): name → type. */
export function familiesOf(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1], m[2]);
  return families;
}

/**
 * sumOf, for a series that must exist: a missing series sums to 0 just like an idle one, so a zero
 * check would pass on a renamed or never registered series, or a renamed label. Fails unless the
 * series' family is declared (a histogram's _bucket/_sum/_count by their family) and, when the
 * family has samples, one of them carries every label filtered on.
 */
export function seriesSum(text: string, samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const families = familiesOf(text);
  const base = name.replace(/_(bucket|sum|count)$/, '');
  const family = families.has(name) ? name : ['histogram', 'summary'].includes(families.get(base) ?? '') ? base : undefined;
  if (family === undefined) throw new Error(`series ${name}: not in the exposition (no # TYPE line for it)`);
  const ofFamily = samples.filter((s) => s.name === family || (family !== name && s.name.startsWith(`${family}_`)));
  const keys = Object.keys(labels);
  if (ofFamily.length > 0 && keys.length > 0 && !ofFamily.some((s) => keys.every((k) => k in s.labels))) {
    throw new Error(`series ${name}: no sample carries the labels ${keys.join(', ')} (it has ${[...new Set(ofFamily.flatMap((s) => Object.keys(s.labels)))].join(', ')})`);
  }
  return sumOf(samples, name, labels);
}

/** GET /metrics on the orchestrator's HTTP port: the content type, the text and its samples. */
export async function scrape(port: number): Promise<{ status: number; contentType: string; text: string; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, samples: res.status === 200 ? parseMetrics(text) : [] };
}
