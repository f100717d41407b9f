import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { SyntaxNode } from '@lezer/common';
import { parser } from '@prometheus-io/lezer-promql';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { exportedSeriesNames } from '../helpers/prometheus.js';

interface Target {
  refId: string;
  expr: string;
  datasource?: { uid?: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: string | { query: string }; definition?: string }> };
}

const dashboardFile = new URL('../../../deploy/grafana/switchboard-dashboard.json', import.meta.url);
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
const variables = new Set(dashboard.templating.list.map((v) => v.name));

/**
 * Grafana's variables replaced by values a query could get (every node for `$instance`), so what is left
 * is PromQL; a `$` naming no variable of the dashboard or of Grafana is refused.
 */
function substitute(expr: string): string {
  return expr
    .replace(/\$__(rate_interval|interval|range)\b/g, '5m')
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare!;
      assert.ok(variables.has(name), `${whole} is not a variable of the dashboard`);
      return '.*';
    });
}

/** The metric names a PromQL expression selects; throws on a syntax error or a selector without a name. */
function selectedMetrics(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  const text = (node: SyntaxNode) => expr.slice(node.from, node.to);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) throw new Error(`syntax error at ${ref.from} in ${expr}`);
      if (ref.name !== 'VectorSelector') return;
      const node = ref.node;
      const identifier = node.getChild('Identifier');
      const byLabel = node
        .getChild('LabelMatchers')
        ?.getChildren('UnquotedLabelMatcher')
        .find((m) => text(m.getChild('LabelName')!) === '__name__' && text(m.getChild('MatchOp')!) === '=');
      const name = identifier ? text(identifier) : byLabel ? JSON.parse(text(byLabel.getChild('StringLiteral')!)) : undefined;
      if (typeof name !== 'string') throw new Error(`a selector names no metric: ${text(node)} in ${expr}`);
      names.push(name);
    },
  });
  return names;
}

/** Every query of the dashboard: panel targets and the variables' label_values(metric, label). */
function queries(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) out.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
  }
  for (const variable of dashboard.templating.list.filter((v) => v.type === 'query')) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query!.query;
    const labelValues = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
    assert.ok(labelValues, `variable ${variable.name}: ${query} is not label_values(selector, label)`);
    out.push({ where: `variable ${variable.name}`, expr: labelValues[1]! });
  }
  return out;
}

describe('Grafana dashboard (deploy/grafana/switchboard-dashboard.json)', () => {
  let gw: RunningGateway;
  let exported: Set<string>;
  before(async () => {
    gw = await startGateway();
    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    exported = exportedSeriesNames(await res.text());
  });
  after(() => gw?.close());

  it('the parser refuses what the checks below must catch', () => {
    assert.throws(() => selectedMetrics('sum(rate(foo[5m])'), /syntax error/);
    assert.throws(() => selectedMetrics('{job="x"}'), /names no metric/);
    assert.deepEqual(selectedMetrics('histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) / b + {__name__="c"}'), ['a_bucket', 'b', 'c']);
    assert.throws(() => substitute('rate(foo{x=~"$nope"}[5m])'), /not a variable/);
  });

  it('every query parses as PromQL and names only series GET /metrics exports', () => {
    assert.ok(exported.has('switchboard_notify_delivery_latency_seconds_bucket'), 'histograms count with their _bucket series');
    const all = queries();
    assert.ok(all.length >= 20, `${all.length} queries`);
    const unknown: string[] = [];
    for (const { where, expr } of all) {
      const metrics = selectedMetrics(substitute(expr));
      assert.ok(metrics.length > 0, `${where} selects no series: ${expr}`);
      for (const metric of metrics) if (!exported.has(metric)) unknown.push(`${where}: ${metric}`);
    }
    assert.deepEqual(unknown, []);
  });

  it('charts what the issue asks for: sockets, messages, latency quantiles, execs, fleet, driver hosts, backend state', () => {
    const exprs = queries().map((q) => q.expr).join('\n');
    for (const wanted of [
      'switchboard_sockets_open',
      'switchboard_notify_messages_received_total',
      'switchboard_notify_messages_written_total',
      'histogram_quantile(0.99, sum by (le) (rate(switchboard_notify_delivery_latency_seconds_bucket',
      'switchboard_control_execs_total',
      'histogram_quantile(0.99, sum by (le) (rate(switchboard_control_exec_duration_seconds_bucket',
      'switchboard_fleet_nodes',
      'switchboard_driver_host_restarts_total',
      'switchboard_backend_up',
    ]) {
      assert.ok(exprs.includes(wanted), `no query with ${wanted}`);
    }
  });

  it('is an importable dashboard: unique panel ids, panels inside the 24-column grid, one Prometheus data source variable', () => {
    assert.equal(dashboard.uid, 'switchboard');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const panel of dashboard.panels) {
      assert.ok(panel.gridPos.x >= 0 && panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the grid`);
      if (panel.type === 'row') continue;
      assert.ok((panel.targets ?? []).length > 0, `${panel.title} has queries`);
      assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title} uses the data source variable`);
    }
    const datasource = dashboard.templating.list.find((v) => v.name === 'datasource');
    assert.deepEqual([datasource?.type, datasource?.query], ['datasource', 'prometheus']);
  });
});
