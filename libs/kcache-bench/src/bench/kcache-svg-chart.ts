/** Dependency-free SVG line charts for the benchmark docs: panels side by side, one legend each. */

export interface ChartSeries {
  readonly name: string;
  /** [x, y] points, drawn in the order given. */
  readonly points: ReadonlyArray<readonly [number, number]>;
  readonly isDashed?: boolean;
}

export interface ChartPanel {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Base-2 logarithmic x axis (contexts, N); ticks at the data's x values. */
  readonly isLogX?: boolean;
  readonly yMin?: number;
  readonly yMax?: number;
  /** Corner of the plot area that holds the legend. Default top-left. */
  readonly legend?: 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';
  readonly series: readonly ChartSeries[];
}

const PANEL_WIDTH = 460;
const PANEL_HEIGHT = 330;
const MARGIN = { left: 64, right: 16, top: 36, bottom: 48 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Panels in a grid of `numColumns` columns, row by row. */
export function renderChartsSvg(panels: readonly ChartPanel[], numColumns = panels.length): string {
  const width = PANEL_WIDTH * Math.min(numColumns, panels.length);
  const height = PANEL_HEIGHT * Math.ceil(panels.length / numColumns);
  const body = panels
    .map((panel, i) => `<g transform="translate(${(i % numColumns) * PANEL_WIDTH},${Math.floor(i / numColumns) * PANEL_HEIGHT})">${renderPanel(panel)}</g>`)
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    body,
    '</svg>',
    '',
  ].join('\n');
}

function renderPanel(panel: ChartPanel): string {
  const plotW = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotH = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const points = panel.series.flatMap((s) => s.points);
  const fx = (x: number) => (panel.isLogX ? Math.log2(x) : x);
  const xs = points.map((p) => fx(p[0]));
  const ys = points.map((p) => p[1]);
  let [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  if (xMin === xMax) [xMin, xMax] = [xMin - 1, xMax + 1];
  const yTicks = niceTicks(panel.yMin ?? Math.min(...ys), panel.yMax ?? Math.max(...ys));
  const [yMin, yMax] = [yTicks[0], yTicks[yTicks.length - 1]];
  const px = (x: number) => MARGIN.left + ((fx(x) - xMin) / (xMax - xMin)) * plotW;
  const py = (y: number) => MARGIN.top + plotH - ((y - yMin) / (yMax - yMin)) * plotH;
  const xTickValues = panel.isLogX ? [...new Set(points.map((p) => p[0]))].sort((a, b) => a - b) : niceTicks(xMin, xMax);
  if (!panel.isLogX) [xMin, xMax] = [xTickValues[0], xTickValues[xTickValues.length - 1]];

  const out: string[] = [];
  out.push(`<text x="${PANEL_WIDTH / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(panel.title)}</text>`);
  for (const y of yTicks) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${py(y) + 4}" text-anchor="end">${formatTick(y)}</text>`);
  }
  for (const x of xTickValues) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 4}" stroke="#333"/>`);
    out.push(`<text x="${px(x)}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${formatTick(x)}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${PANEL_HEIGHT - 10}" text-anchor="middle">${escapeXml(panel.xLabel)}</text>`);
  out.push(
    `<text transform="translate(14,${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(panel.yLabel)}</text>`,
  );
  const dash = (series: ChartSeries) => (series.isDashed ? ' stroke-dasharray="6,4"' : '');
  panel.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length];
    const path = series.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dash(series)}/>`);
    for (const p of series.points) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${color}"/>`);
  });
  // Legend: a white box in the chosen corner, one line per series.
  const legendW = 40 + 6 * Math.max(...panel.series.map((s) => s.name.length));
  const legendH = 8 + 15 * panel.series.length;
  const corner = panel.legend ?? 'top-left';
  const lx = corner.endsWith('left') ? MARGIN.left + 6 : MARGIN.left + plotW - 6 - legendW;
  const ly0 = corner.startsWith('top') ? MARGIN.top + 6 : MARGIN.top + plotH - 6 - legendH;
  out.push(`<rect x="${lx}" y="${ly0}" width="${legendW}" height="${legendH}" fill="white" fill-opacity="0.85" stroke="#ccc"/>`);
  panel.series.forEach((series, i) => {
    const color = COLORS[i % COLORS.length];
    const ly = ly0 + 16 + i * 15;
    out.push(`<line x1="${lx + 6}" x2="${lx + 26}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dash(series)}/>`);
    out.push(`<text x="${lx + 32}" y="${ly}">${escapeXml(series.name)}</text>`);
  });
  return out.join('\n');
}

/** About five round tick values covering [min, max]. */
export function niceTicks(min: number, max: number): number[] {
  if (!(max > min)) [min, max] = [min - 0.5, max + 0.5];
  const rough = (max - min) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function formatTick(value: number): string {
  if (Math.abs(value) >= 1000) return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
  return String(Number(value.toPrecision(4)));
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
