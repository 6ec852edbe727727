// What a feature module is, and what it is given. A module talks to the hub
// through ServerApi (core/api.ts) and to its data through Storage; it reaches
// another module only through the public API that module returns from start(),
// after naming it in `depends`.
import type { ServerApi } from '../core/api.js';
import type { Storage } from '../storage/types.js';

export interface ModuleContext {
  /** The hub: hooks, IQ handlers, filters, services, events, routing. */
  readonly server: ServerApi;
  readonly storage: Storage;
  /** The public API of a module named in this module's `depends` (what its start() returned as `api`). */
  use<T>(name: string): T;
}

export interface ModuleInstance {
  /** What other modules get from `ctx.use(name)`. */
  readonly api?: unknown;
  /** Called on shutdown, in reverse start order, before storage closes. */
  stop?(): Promise<void> | void;
}

export interface Module {
  readonly name: string;
  /** Modules that must start before this one (and whose API it may use). */
  readonly depends?: readonly string[];
  start(ctx: ModuleContext): ModuleInstance | void | Promise<ModuleInstance | void>;
}
