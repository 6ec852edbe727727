// bench/login/tls-floor.ts with tiny N, so that it cannot silently rot: both shapes of
// connection complete (a hang in the login-shaped exchange would time out here) and the
// server's CPU per connection is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

for (const login of [false, true]) {
  test(`tls-floor${login ? ' --login' : ''}: every connection completes and the server's CPU per connection is reported`, async () => {
    const args = ['--import', 'tsx', 'bench/login/tls-floor.ts', '--connections', '30', '--concurrency', '5', '--warmup', '5', ...(login ? ['--login'] : [])];
    const { stdout } = await run(process.execPath, args, { timeout: 60_000 });
    assert.match(stdout, login ? /^30 TLS connections shaped as logins \(5 at a time, after 5 unmeasured\)/ : /^30 TLS connections \(5 at a time/);
    const perConnection = /server CPU per connection: (\d+) µs/.exec(stdout);
    assert.ok(perConnection && Number(perConnection[1]) > 0, stdout);
  });
}
