// HTTP paths that modules serve on the server's HTTP listeners (XEP-0363 file upload),
// and the base URL those listeners are reached at. The listeners (stream/http) look
// routes up here; modules register them through ServerApi.handleHttp, so that stream/
// never imports a module.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the listener already worked out about a request a module's route gets. */
export interface HttpRequestInfo {
  /** The URL's path, still percent-encoded. */
  readonly path: string;
  /** The query string's parameters. */
  readonly query: URLSearchParams;
  /** CORS headers for this request's Origin under http.allowed_origins (empty when none apply). */
  readonly cors: Readonly<Record<string, string>>;
  /** The client's address (after http.trust_proxy). */
  readonly remoteAddress: string;
}

/** Answers one request; it owns `res` from then on (and must end it). */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, info: HttpRequestInfo) => void;

export class HttpRoutes {
  private readonly routes = new Map<string, HttpHandler>();
  private base: ((host: string) => string | undefined) | undefined;

  /** Serves every path under `prefix` ('/name/'); returns the function that removes the route. */
  add(prefix: string, handler: HttpHandler): () => void {
    if (!/^\/[a-z0-9_-]+\/$/.test(prefix)) throw new Error(`invalid HTTP route prefix ${prefix}`);
    if (this.routes.has(prefix)) throw new Error(`HTTP route ${prefix} is already served`);
    this.routes.set(prefix, handler);
    return () => {
      if (this.routes.get(prefix) === handler) this.routes.delete(prefix);
    };
  }

  /** The handler for a request path, if a module serves it. */
  find(path: string): HttpHandler | undefined {
    const slash = path.indexOf('/', 1);
    return slash < 0 ? undefined : this.routes.get(path.slice(0, slash + 1));
  }

  /** Set by the composition root once the listeners know their ports. */
  setBaseUrl(base: (host: string) => string | undefined): void {
    this.base = base;
  }

  baseUrl(host: string): string | undefined {
    return this.base?.(host);
  }
}
