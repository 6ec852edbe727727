// What every benchmark command line does first: parse, or print the usage.

/**
 * Parses the arguments with `parse` (which returns undefined for --help and throws on a bad
 * argument). Returns the options, or the exit code when there is nothing to run: 0 after printing
 * the usage, 2 after a bad argument (with the usage on stderr).
 */
export function parseOrUsage<T>(parse: (argv: string[]) => T | undefined, usage: string): T | number {
  try {
    const opts = parse(process.argv.slice(2));
    if (opts !== undefined) return opts;
    process.stdout.write(usage);
    return 0;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
}

/** A non-negative integer option (`--name`), or `def` when absent. */
export function int(v: string | undefined, name: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer`);
  return n;
}
