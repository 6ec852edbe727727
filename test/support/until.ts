// Waiting for a condition that no stanza or event announces (a row removed after a write, a
// count reached), polled, with a deadline that says what was awaited.

/** Resolves once `cond` holds; rejects with "timed out waiting for <what>" after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000, every = 20): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
