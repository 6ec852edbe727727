// The ratios as a PNG bar chart, drawn by gnuplot (Debian gnuplot-nox). Each bar
// is Shoal's advantage factor for one figure: Shoal/X for rates, X/Shoal for
// costs, so a bar above 1 always means Shoal did better.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS, advantage, type Results } from './table.js';
import { gnuplot } from '../shared/gnuplot.js';

export function drawChart(results: Results, png: string, workDir: string): boolean {
  const rows: string[] = [];
  for (const m of METRICS) {
    if (!m.chart || !results.scenarios.includes(m.scenario)) continue;
    const val = (k: 'shoal' | 'prosody' | 'ejabberd'): number | undefined => {
      const r = results.servers[k]?.reports[m.scenario];
      return r ? m.value(r) : undefined;
    };
    const s = val('shoal');
    const p = advantage(m, s, val('prosody'));
    const e = advantage(m, s, val('ejabberd'));
    if (p === undefined && e === undefined) continue;
    rows.push(`"${m.scenario}\\n${m.chart}" ${p ?? 'NaN'} ${e ?? 'NaN'}`);
  }
  if (rows.length === 0) return false;
  const data = join(workDir, 'ratios.dat');
  writeFileSync(data, rows.join('\n') + '\n');
  const script = [
    'set terminal pngcairo size 1100,560 font "DejaVu Sans,10" noenhanced',
    `set output ${JSON.stringify(png)}`,
    'set title "Shoal\'s advantage factor (above 1 = Shoal better; rates: Shoal/X, costs: X/Shoal)"',
    'set bmargin 5',
    'set style data histograms',
    'set style histogram clustered gap 1',
    'set style fill solid 0.85 border -1',
    'set boxwidth 0.9',
    'set logscale y 2',
    'set yrange [0.0625:16]',
    'set ytics ("1/16" 0.0625, "1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16)',
    'set grid ytics',
    'set key top left',
    'set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"',
    `plot ${JSON.stringify(data)} using 2:xtic(1) title "vs Prosody" lc rgb "#3b7dd8", '' using 3 title "vs ejabberd" lc rgb "#d8703b"`,
  ].join('\n');
  return gnuplot(script);
}
