// Per-key caches of stored data that the hot path reads (blocklists, avatar
// hashes), each registered by name so that whoever learns that a key changed
// elsewhere (the cluster bus: another node wrote it) can invalidate it here.

/**
 * A cache of values loaded asynchronously per key (usually a bare JID). A key is in one of the
 * two maps: loading, or loaded (a value per online user is kept without a promise beside it).
 */
export class KeyedCache<V> {
  /** Loads on their way. */
  private readonly entries = new Map<string, Promise<V>>();
  /** Values whose load has finished, for the synchronous hot path (outgoing filters). */
  private readonly loaded = new Map<string, V>();

  constructor(
    readonly name: string,
    private readonly changed: (name: string, key: string) => void,
  ) {}

  /** The cached value, loading it with `load` when absent; a failed load is not kept. */
  get(key: string, load: () => Promise<V>): Promise<V> {
    let value = this.peek(key);
    if (value === undefined) {
      const loading = load();
      value = loading;
      this.entries.set(key, loading);
      loading.then(
        (v) => {
          if (this.entries.get(key) !== loading) return;
          this.entries.delete(key);
          this.loaded.set(key, v);
        },
        () => {
          if (this.entries.get(key) === loading) this.entries.delete(key);
        },
      );
    }
    return value;
  }

  /** The value, if it is cached and loaded now (never loads). */
  settled(key: string): V | undefined {
    return this.loaded.get(key);
  }

  /** The cached value without loading, if any. */
  peek(key: string): Promise<V> | undefined {
    if (this.loaded.has(key)) return Promise.resolve(this.loaded.get(key) as V);
    return this.entries.get(key);
  }

  has(key: string): boolean {
    return this.loaded.has(key) || this.entries.has(key);
  }

  /** Replaces the value after this process changed it, and tells the listeners (other nodes) it changed. */
  set(key: string, value: V): void {
    this.entries.delete(key);
    this.loaded.set(key, value);
    this.changed(this.name, key);
  }

  /**
   * The stored value changed in this process while no loaded value was cached here: drops any
   * load on its way, and tells the listeners (other nodes) to drop theirs.
   */
  drop(key: string): void {
    this.entries.delete(key);
    this.loaded.delete(key);
    this.changed(this.name, key);
  }

  /** Drops the value because it changed elsewhere; the next get() reloads it. */
  invalidate(key: string): void {
    this.entries.delete(key);
    this.loaded.delete(key);
  }

  /** Drops the value because it is no longer needed here (e.g. the user's last session ended). */
  forget(key: string): void {
    this.entries.delete(key);
    this.loaded.delete(key);
  }

  get size(): number {
    return this.entries.size + this.loaded.size;
  }
}

/** The registry of every cache of the server. */
export class Caches {
  private readonly caches = new Map<string, KeyedCache<unknown>>();
  private readonly listeners: ((name: string, key: string) => void)[] = [];

  /** Creates the cache called `name` (one per name). */
  define<V>(name: string): KeyedCache<V> {
    if (this.caches.has(name)) throw new Error(`cache ${name} is already defined`);
    const cache = new KeyedCache<V>(name, (n, k) => {
      for (const l of this.listeners) l(n, k);
    });
    this.caches.set(name, cache as KeyedCache<unknown>);
    return cache;
  }

  /** Drops `key` from the cache called `name` because it changed elsewhere (no-op for an unknown name). */
  invalidate(name: string, key: string): void {
    this.caches.get(name)?.invalidate(key);
  }

  /** Called whenever this process changes a cached key (a cluster forwards it to the other nodes). */
  onChange(listener: (name: string, key: string) => void): void {
    this.listeners.push(listener);
  }

  names(): string[] {
    return [...this.caches.keys()];
  }
}
