// Runs a gnuplot script (Debian gnuplot-nox) that draws a PNG with the pngcairo
// terminal; without cairo (a minimal build may lack it) the same script runs
// again with the plain png terminal, which knows no font option.
import { spawnSync } from 'node:child_process';

export function gnuplot(script: string): boolean {
  if (spawnSync('gnuplot', [], { input: script, encoding: 'utf8' }).status === 0) return true;
  const plain = script.replace(/^set terminal pngcairo(.*)$/m, (_line, rest: string) => `set terminal png${rest.replace(/\s*font "[^"]*"/, '')}`);
  return spawnSync('gnuplot', [], { input: plain, encoding: 'utf8' }).status === 0;
}
