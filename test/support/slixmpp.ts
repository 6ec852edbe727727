// slixmpp (Python, Debian's python3-slixmpp), the second independent client
// library the integration tests use: whether it is there, and test/slixmpp/client.py,
// one scripted session run to completion (test/support/im-clients.ts drives the
// interactive test/slixmpp/im_client.py).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const PYTHON = '/usr/bin/python3';
const CLIENT_SCRIPT = join(import.meta.dirname, '..', 'slixmpp', 'client.py');

/** A reason to skip the slixmpp tests, or false when slixmpp is importable. */
export function slixmppMissing(): string | false {
  const probe = spawnSync(PYTHON, ['-c', 'import slixmpp'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} not runnable: ${probe.error.message}`;
  if (probe.status !== 0) return `slixmpp is not importable by ${PYTHON} (install Debian's python3-slixmpp): ${probe.stderr.trim().split('\n').pop()}`;
  return false;
}

export type ScriptEvent = Record<string, unknown> & { event: string };

/** A script's stdout as events: one JSON object per line; a line that is not JSON is kept as {event: 'unparsable', line}. */
export function scriptEvents(stdout: string): ScriptEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l): ScriptEvent => {
      try {
        return JSON.parse(l) as ScriptEvent;
      } catch {
        return { event: 'unparsable', line: l };
      }
    });
}

export interface ScriptRun {
  code: number | null;
  /** stdout's JSON lines in order; a line that is not JSON is kept as {event: 'unparsable', line}. */
  events: ScriptEvent[];
  stderr: string;
  /** stdout and stderr as they came, for failure messages. */
  output: string;
  /** The first event of this kind (fails the test when absent). */
  get(kind: string): ScriptEvent;
  all(kind: string): ScriptEvent[];
}

/** Runs client.py to completion (it has its own overall timeout, `--timeout`; `backstopMs` is a last resort). */
export function runSlixmppScript(args: string[], backstopMs = 15_000): Promise<ScriptRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [CLIENT_SCRIPT, '--timeout', '8', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const backstop = setTimeout(() => child.kill('SIGKILL'), backstopMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(backstop);
      const events = scriptEvents(out);
      const output = `${out}${stderr}`;
      resolve({
        code,
        events,
        stderr,
        output,
        get(kind) {
          const e = events.find((x) => x.event === kind);
          assert.ok(e, `slixmpp reported no "${kind}" event; got:\n${output}`);
          return e;
        },
        all: (kind) => events.filter((x) => x.event === kind),
      });
    });
  });
}
