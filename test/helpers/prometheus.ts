/** Samples of a Prometheus text exposition: `name{label="v",...}` (labels as written) -> value. */
export type Samples = Map<string, number>;

/** Parses the text format as a scraper would; comment lines (# HELP, # TYPE) are skipped. */
export function parsePrometheus(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    samples.set(match[1]!, Number(match[2]));
  }
  return samples;
}

/** GETs `<baseUrl>/metrics` and parses it. */
export async function scrape(baseUrl: string): Promise<Samples> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain')) throw new Error(`GET /metrics content-type ${type}`);
  return parsePrometheus(await res.text());
}

/** A sample's value, 0 when the series does not exist yet (a counter never incremented). */
export function value(samples: Samples, series: string): number {
  return samples.get(series) ?? 0;
}

/**
 * Every series name a text exposition declares (its `# TYPE` lines, so a labelled counter never
 * incremented counts too), with the `_bucket`, `_sum` and `_count` series of histograms and the `_sum` and
 * `_count` of summaries.
 */
export function exportedSeriesNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) {
    const [, name, type] = match as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}
