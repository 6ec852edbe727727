// Reading a password on a terminal without echoing it.
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

export function readPassword(prompt: string, confirm: boolean): Promise<string> {
  const ask = (q: string): Promise<string> =>
    new Promise((resolve) => {
      let muted = false;
      const output = new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (!muted) process.stdout.write(chunk);
          cb();
        },
      });
      const rl = createInterface({ input: process.stdin, output, terminal: true });
      rl.question(q, (answer) => {
        rl.close();
        process.stdout.write('\n');
        resolve(answer);
      });
      muted = true;
    });
  return ask(prompt).then(async (first) => {
    if (!confirm) return first;
    const second = await ask('Repeat password: ');
    if (first !== second) throw new Error('passwords do not match');
    return first;
  });
}
