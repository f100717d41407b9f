import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './live-charts.css';
import { errorText, h, panel } from './dom.js';
import { pollWhileVisible } from './poll.js';
import { api, apiKey, onApiKeyChange } from './settings.js';
import type { LiveSnapshot as Live } from '../../src/protocol/live-snapshot.js';

type Column = Array<number | null>;

interface ChartSpec {
  id: string;
  title: string;
  /** Draw a line across intervals without a value (latency: intervals without deliveries). */
  spanGaps?: boolean;
  series: Array<{ key: string; label: string; color: string; pick: (live: Live) => Column }>;
}

const zeros = (live: Live): Column => live.t.map(() => 0);

/** Colours keep 3:1 contrast on white (WCAG non-text contrast) and stay apart for common colour blindness. */
const charts: ChartSpec[] = [
  {
    id: 'sockets',
    title: 'Open sockets',
    series: [
      { key: 'notify', label: 'notify', color: '#1f5fd6', pick: (l) => l.sockets.notify ?? zeros(l) },
      { key: 'control', label: 'control', color: '#b85c00', pick: (l) => l.sockets.control ?? zeros(l) },
    ],
  },
  {
    id: 'messages',
    title: 'Notification messages per second',
    series: [
      { key: 'in', label: 'in (from the broker)', color: '#1f5fd6', pick: (l) => l.messagesIn },
      { key: 'out', label: 'out (to sockets)', color: '#b85c00', pick: (l) => l.messagesOut },
    ],
  },
  {
    id: 'latency',
    title: 'Delivery latency, ms',
    spanGaps: true,
    series: [
      { key: 'p50', label: 'p50', color: '#1f5fd6', pick: (l) => l.latencyP50Ms },
      { key: 'p99', label: 'p99', color: '#a61b1b', pick: (l) => l.latencyP99Ms },
    ],
  },
  { id: 'execs', title: 'Execs per second', series: [{ key: 'execs', label: 'execs', color: '#0b6b3d', pick: (l) => l.execs }] },
];

const chartHeight = 150;
const format = (n: number | undefined): string => (n === undefined ? '—' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2).replace(/\.?0+$/, ''));
const span = (seconds: number): string => (seconds < 120 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`);
const numbers = (column: Column): number[] => column.filter((v): v is number => v !== null);

/**
 * One chart: a uPlot canvas (kept across refreshes, only its data changes) under a caption that says in
 * text what the lines show (latest and peak of each series), for screen readers and for tests.
 */
function liveChart(spec: ChartSpec): { element: HTMLElement; update(live: Live): void } {
  const plotArea = h('div', { class: 'plot', 'aria-hidden': 'true' });
  const values = new Map(spec.series.map((s) => [s.key, h('span', { 'data-testid': `chart-${spec.id}-${s.key}` }, '—')]));
  const caption = h(
    'figcaption',
    {},
    h('strong', {}, spec.title),
    ...spec.series.map((s) => h('span', { class: 'legend' }, h('span', { class: 'swatch', style: `background:${s.color}` }), `${s.label}: `, values.get(s.key)!)),
  );
  const element = h('figure', { class: 'chart', 'data-testid': `chart-${spec.id}`, 'data-points': '0' }, caption, plotArea);
  let plot: uPlot | undefined;
  const resize = new ResizeObserver(() => plot?.setSize({ width: plotArea.clientWidth, height: chartHeight }));
  resize.observe(plotArea);
  return {
    element,
    update(live) {
      const columns = spec.series.map((s) => s.pick(live));
      const data: uPlot.AlignedData = [live.t, ...columns];
      if (!plot) {
        plot = new uPlot(
          {
            width: Math.max(200, plotArea.clientWidth),
            height: chartHeight,
            legend: { show: false },
            cursor: { drag: { x: false, y: false } },
            scales: { y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
            axes: [{ stroke: '#5b6270' }, { stroke: '#5b6270', size: 48 }],
            // Filled points: an interval with deliveries between two without (latency is null there) stays visible.
            series: [{}, ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: spec.spanGaps ?? false, points: { size: 6, fill: s.color } }))],
          },
          data,
          plotArea,
        );
      } else plot.setData(data);
      element.dataset.points = String(live.t.length);
      spec.series.forEach((s, i) => {
        const seen = numbers(columns[i]!);
        const latest = seen.at(-1);
        const peak = seen.length === 0 ? undefined : Math.max(...seen);
        const value = values.get(s.key)!;
        value.textContent = peak === undefined ? '—' : `${format(latest)} now, peak ${format(peak)}`;
        value.dataset.peak = String(peak ?? '');
      });
    },
  };
}

/**
 * The node's last minutes as live charts (sockets, messages in/out per second, delivery latency p50/p99,
 * execs per second), from the `live` part of the admin stats, refreshed every `intervalMs` while the tab
 * is visible (needs an admin key).
 */
export function liveChartsPanel(intervalMs = 2_000): HTMLElement {
  const items = charts.map(liveChart);
  const status = h('p', { class: 'muted', 'data-testid': 'charts-status' }, 'Enter an admin API key to see the charts.');
  const refresh = async () => {
    if (!apiKey()) return;
    try {
      const { live } = await api<{ live: Live }>('/api/admin/v1/stats');
      status.textContent = live.t.length === 0 ? 'Collecting: the first point comes after one interval.' : `This node's last ${span(live.t.at(-1)! - live.t[0]! + live.intervalMs / 1000)}, one point per ${live.intervalMs / 1000} s.`;
      status.className = 'muted';
      for (const item of items) item.update(live);
    } catch (err) {
      status.textContent = errorText(err);
      status.className = 'error';
    }
  };
  const poller = pollWhileVisible(refresh, intervalMs);
  onApiKeyChange(() => poller.refresh());
  return panel('Last minutes', 'charts-panel', status, h('div', { class: 'charts' }, ...items.map((i) => i.element)));
}
