// Starts modules in dependency order and stops them in reverse.
import type { ServerApi } from '../core/api.js';
import type { Storage } from '../storage/types.js';
import type { Module, ModuleContext, ModuleInstance } from './api.js';

export class ModuleError extends Error {}

/**
 * The start order: each module after the modules it depends on, otherwise in the order given.
 * Throws a ModuleError for a duplicate name, a missing dependency or a cycle.
 */
export function startOrder(modules: readonly Module[]): Module[] {
  const byName = new Map<string, Module>();
  for (const m of modules) {
    if (byName.has(m.name)) throw new ModuleError(`module ${m.name} is listed twice`);
    byName.set(m.name, m);
  }
  const order: Module[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: Module, path: string[]): void => {
    const s = state.get(m.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new ModuleError(`modules depend on each other: ${[...path, m.name].join(' -> ')}`);
    state.set(m.name, 'visiting');
    for (const dep of m.depends ?? []) {
      const d = byName.get(dep);
      if (!d) throw new ModuleError(`module ${m.name} needs module ${dep}, which is not enabled`);
      visit(d, [...path, m.name]);
    }
    state.set(m.name, 'done');
    order.push(m);
  };
  for (const m of modules) visit(m, []);
  return order;
}

/** The modules of one server, started. */
export class RunningModules {
  private constructor(private readonly running: { module: Module; instance: ModuleInstance }[]) {}

  static async start(modules: readonly Module[], server: ServerApi, storage: Storage): Promise<RunningModules> {
    const running: { module: Module; instance: ModuleInstance }[] = [];
    const apis = new Map<string, unknown>();
    for (const module of startOrder(modules)) {
      const ctx: ModuleContext = {
        server,
        storage,
        use<T>(name: string): T {
          if (!(module.depends ?? []).includes(name)) throw new ModuleError(`module ${module.name} uses ${name} without depending on it`);
          if (!apis.has(name)) throw new ModuleError(`module ${name} has no API`);
          return apis.get(name) as T;
        },
      };
      const instance = (await module.start(ctx)) ?? {};
      if (instance.api !== undefined) apis.set(module.name, instance.api);
      running.push({ module, instance });
    }
    return new RunningModules(running);
  }

  get names(): string[] {
    return this.running.map((r) => r.module.name);
  }

  /** The API a running module offers, if any. */
  api(name: string): unknown {
    return this.running.find((r) => r.module.name === name)?.instance.api;
  }

  /** Stops every module, last started first; a failing stop() is reported and the others still stop. */
  async stop(onError: (name: string, err: unknown) => void): Promise<void> {
    for (const { module, instance } of [...this.running].reverse()) {
      try {
        await instance.stop?.();
      } catch (err) {
        onError(module.name, err);
      }
    }
  }
}
