// Runs the `shoal` command as an operator would: a separate Node process on
// src/cli/main.ts, in a given working directory, stdin a pipe (never a TTY).
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
// Resolved here: the CLI runs in temporary directories where a bare 'tsx' would not resolve.
const TSX = import.meta.resolve('tsx');

export interface CliOptions {
  cwd: string;
  /** Added to (or, when undefined, removed from) the environment; SHOAL_CONFIG is always cleared first. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed (stdin is a pipe, never a TTY). */
  input?: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SHOAL_CONFIG;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Starts `shoal <args>`; the caller owns its stdio and its end. */
export function spawnShoal(args: string[], opts: CliOptions): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: opts.cwd, env: cliEnv(opts.env), stdio: 'pipe' });
}

/** Runs `shoal <args>` to completion. */
export function runShoal(args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawnShoal(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `shoal <args>` and expects exit code 0; returns stdout. */
export async function shoalOk(args: string[], opts: CliOptions): Promise<string> {
  const r = await runShoal(args, opts);
  assert.equal(r.code, 0, `shoal ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
