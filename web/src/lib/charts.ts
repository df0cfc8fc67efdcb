// ECharts, imported piece by piece (only the charts and components the console
// uses) and loaded on demand, so the overview ships without it.

import * as echarts from 'echarts/core';
import { BarChart, LineChart, MapChart } from 'echarts/charts';
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([
  LineChart,
  BarChart,
  MapChart,
  GridComponent,
  TooltipComponent,
  LegendComponent,
  MarkLineComponent,
  VisualMapComponent,
  DataZoomComponent,
  CanvasRenderer,
]);

export { echarts };

import { PALETTE } from './palette';
export { PALETTE };

export function baseOption(large = false): Record<string, unknown> {
  const fs = large ? 18 : 12;
  return {
    color: PALETTE,
    backgroundColor: 'transparent',
    textStyle: { color: '#c9d4e8', fontFamily: getComputedStyle(document.documentElement).getPropertyValue('--font') || 'sans-serif', fontSize: fs },
    animation: false,
    grid: { left: 8, right: 16, top: 28, bottom: 8, containLabel: true },
    tooltip: {
      trigger: 'axis',
      backgroundColor: '#0f1830',
      borderColor: '#2a3a5e',
      textStyle: { color: '#e8eef9', fontSize: fs },
    },
    legend: { top: 0, right: 0, textStyle: { color: '#a9b6cf', fontSize: fs }, itemWidth: 14, itemHeight: 8 },
  };
}

export const AXIS = {
  axisLine: { lineStyle: { color: '#3a4b70' } },
  axisLabel: { color: '#a9b6cf' },
  splitLine: { lineStyle: { color: '#1f2c4a' } },
};

/** Registers a GeoJSON FeatureCollection as an ECharts map once. */
export function ensureMap(name: string, geojson: unknown): void {
  if (!echarts.getMap(name)) echarts.registerMap(name, geojson as Parameters<typeof echarts.registerMap>[1]);
}
