// Ordered handler chains. Every hook is registered with an explicit priority:
// higher runs first, equal priorities in registration order. A handler returns
// true when it has dealt with the event and the chain must stop.

/** Named priorities, so that modules say where they stand rather than rely on load order. */
export const Priority = {
  /** Protocol checks that must see a stanza before any policy (e.g. stream management counting). */
  FIRST: 1000,
  /** Access policy that may refuse a stanza outright (blocking, limits). */
  POLICY: 500,
  /** Changes a stanza before it is acted on (e.g. stamping the avatar hash on presence). */
  STAMP: 100,
  DEFAULT: 0,
  /** The module that finally handles a kind of stanza (presence state, subscriptions). */
  HANDLER: -100,
  /** Fallbacks (e.g. offline storage for what nobody else took). */
  LAST: -1000,
} as const;

interface Entry<F> {
  fn: F;
  priority: number;
  seq: number;
}

/** An ordered list of handlers of one kind. */
export class HookChain<F> {
  private entries: Entry<F>[] = [];
  private seq = 0;
  /** The handlers in run order (rebuilt on change, iterated on every event). */
  handlers: readonly F[] = [];

  add(fn: F, priority: number): () => void {
    const entry = { fn, priority, seq: this.seq++ };
    this.entries.push(entry);
    this.sort();
    return () => {
      this.entries = this.entries.filter((e) => e !== entry);
      this.sort();
    };
  }

  get size(): number {
    return this.handlers.length;
  }

  private sort(): void {
    this.entries.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.handlers = this.entries.map((e) => e.fn);
  }
}

/** Runs handlers in order until one returns true; resolves whether one did. A handler that answers synchronously is not awaited. */
export async function runUntilHandled<A extends unknown[]>(
  chain: HookChain<(...args: A) => boolean | void | Promise<boolean | void>>,
  ...args: A
): Promise<boolean> {
  for (const h of chain.handlers) {
    const r = h(...args);
    if ((r instanceof Promise ? await r : r) === true) return true;
  }
  return false;
}
