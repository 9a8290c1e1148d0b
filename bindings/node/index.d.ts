// Type definitions for quicklane (Node binding).
/// <reference types="node" />
import { Readable, Writable } from 'node:stream';

export type Handler = (req: Request, reply: Reply) => unknown | Promise<unknown>;
/** The handler of a route declared with { stream: true }. */
export type StreamHandler = (req: StreamRequest, reply: Reply) => unknown | Promise<unknown>;

export interface ListenOptions {
  /** Address to bind; default "127.0.0.1" ("::" / "::1" for IPv6). */
  host?: string;
  /** Port; 0 (default) picks a free one (see app.port). */
  port?: number;
  /** Share a fixed port across processes (node:cluster) with SO_REUSEPORT.
   * Needs a core with ql_server_options.reuse_port (see `features.reusePort`). */
  reusePort?: boolean;
  maxHeaderBytes?: number;
  maxUrlBytes?: number;
  maxBodyBytes?: number;
  maxHeaders?: number;
  headerTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
  maxPipeline?: number;
  backlog?: number;
  /** A handler (or its promise) that has not answered after this many ms:
   * the client gets 503 {"detail":"handler timed out"}; default 60000. */
  handlerTimeoutMs?: number;
  /** Limit of a streamed body ({ stream: true } routes without their own maxBodyBytes):
   * a larger Content-Length is 413 before a byte is read, a chunked body crossing it 413. Default: none. */
  maxStreamBodyBytes?: number;
  /** Unread bytes of a streamed body the core buffers before it stops reading the
   * client (backpressure); default 256 KiB, 4 KiB .. 64 MiB. */
  bodyWindowBytes?: number;
}

/** Native rules of a route, checked in the core before JS runs. */
export interface RuleOptions {
  /** Token bucket per client IP (or per keyHeader value): over it → 429 with Retry-After. */
  rateLimit?: { max: number; timeWindow?: number; keyHeader?: string };
  /** One of app.apiKeys() must come with the request: missing → 401, wrong → 403. */
  apiKey?: boolean;
  /** GET answers cached natively for ttl ms per path+query (+ vary headers); the handler runs once per key per TTL. */
  cache?: { ttl: number; vary?: string | string[] };
  /** Fastify's route schema (plain JSON Schema, TypeBox-compatible), checked natively:
   * body → 400 (not JSON) / 422; params and querystring → typed parameters, 422. */
  schema?: { body?: object; params?: object; querystring?: object };
}

/** Rules of a route whose body is read as it arrives: req is a StreamRequest. */
export interface StreamOptions extends Omit<RuleOptions, 'schema'> {
  stream: true;
  /** This route's limit of the body (413 past it); default the server's maxStreamBodyBytes. */
  maxBodyBytes?: number;
  /** params and querystring only: a body schema needs the whole body (use a buffered route). */
  schema?: { params?: object; querystring?: object };
}

export interface StaticOptions extends RuleOptions {
  status?: number;
  contentType?: string;
  headers?: Record<string, string | number>;
}

export interface RouteOptions extends RuleOptions {
  method: string | string[];
  url: string;
  handler: Handler;
}

export interface StreamRouteOptions extends StreamOptions {
  method: string | string[];
  url: string;
  handler: StreamHandler;
}

export interface CorsOptions {
  /** Exact origins, or '*' for any. */
  origin: string | string[];
  methods?: string | string[];
  allowedHeaders?: string | string[];
  exposedHeaders?: string | string[];
  credentials?: boolean;
  /** Preflight cache in seconds (default 600). */
  maxAge?: number;
}

export interface Stats {
  connectionsOpen: number;
  connectionsTotal: number;
  requestsTotal: number;
  requestsInFlight: number;
}

/** A request. Data is read lazily from the core and stays available until the
 * response is sent; values already read stay readable afterwards. */
export declare class Request {
  readonly method: string;
  /** Raw request target (path and query), as sent. */
  readonly url: string;
  /** Path without the query, as sent (not decoded). */
  readonly path: string;
  /** The matched route pattern. */
  readonly routePattern: string;
  /** Path parameters, percent-decoded. */
  readonly params: Record<string, string>;
  /** Query parameters, percent-decoded; repeated names give arrays. */
  readonly query: Record<string, string | string[]>;
  /** Headers with lower-case names (values decoded as latin1, like node:http). */
  readonly headers: Record<string, string | string[]>;
  /** The raw body (a copy made on first use). */
  readonly body: Buffer;
  /** Client address, e.g. "127.0.0.1". */
  readonly ip: string;
  /** True once the client went away before the answer. */
  readonly aborted: boolean;
  /** Fires when the client goes away before the answer. */
  readonly signal: AbortSignal;
  header(name: string): string | undefined;
  /** The body parsed as JSON; invalid JSON throws an error with statusCode 400. */
  json<T = any>(): T;
  /** The body as UTF-8 text. */
  text(): string;
}

/**
 * The request of a route declared with { stream: true }: everything of
 * Request, and a Readable of the body's Buffers, read from the core as they
 * arrive (`for await (const chunk of req)`, `req.pipe(dest)`, `pipeline(req, dest)`,
 * `req.on('data')`). Backpressure: a consumer that stops reading stops the client.
 * Reading first sends `100 Continue` to a client that expects it.
 * When the body fails (client left: code 'QL_E_GONE'; over the limit: 'QL_E_TOO_LARGE',
 * statusCode 413, already answered by the core; malformed chunks: 'QL_E_INVALID',
 * statusCode 400, already answered) the stream emits 'aborted' and then one 'error'
 * (when something listens for it) and the request is finished: a later reply is ignored,
 * data read or kept (method, url, params, query, headers, ip) stays readable.
 */
export declare class StreamRequest extends Readable {
  readonly method: string;
  readonly url: string;
  readonly path: string;
  readonly routePattern: string;
  readonly params: Record<string, string>;
  readonly query: Record<string, string | string[]>;
  readonly headers: Record<string, string | string[]>;
  readonly ip: string;
  readonly aborted: boolean;
  readonly signal: AbortSignal;
  /** The declared Content-Length; -1 when chunked, 0 without a body. */
  readonly contentLength: number;
  /** The collected body once buffer()/text()/json() resolved; throws before. */
  readonly body: Buffer;
  header(name: string): string | undefined;
  /** Collects the stream into one Buffer. */
  buffer(): Promise<Buffer>;
  /** Collects the stream as UTF-8 text. */
  text(): Promise<string>;
  /** Collects the stream and parses it; invalid JSON rejects with statusCode 400. */
  json<T = any>(): Promise<T>;
}

/** Where streamed answers come from: reply.send(source) or a handler's return value. */
export type StreamSource =
  | Readable
  | AsyncIterable<Buffer | Uint8Array | string>
  | Generator<Buffer | Uint8Array | string, unknown, unknown>;

export interface StreamAnswerOptions {
  /** Default: reply.statusCode. */
  status?: number;
  /** Added to the headers set with reply.header(). A content-length here declares the length. */
  headers?: Record<string, string | number | Array<string | number>>;
  /** Default: reply.type(), else application/octet-stream. */
  contentType?: string;
  /** Declared Content-Length (bytes): sent as is, not chunked; to HEAD, the head only.
   * Default: reply.header('content-length'), else chunked. Ending short of it closes the connection. */
  length?: number;
}

/** One server-sent event. `data` that is not a string is sent as JSON; line breaks
 * (CRLF, CR, LF) in data and comment become one `data:` / `:` line each. */
export interface SseMessage {
  data?: unknown;
  event?: string;
  id?: string | number;
  /** Reconnection delay for the client, in ms. */
  retry?: number;
  /** A comment line (`: text`), ignored by clients. */
  comment?: string;
}

/** An item of an SSE source: a string (its data), an event object, or bytes already framed (sse.event()). */
export type SseItem = string | SseMessage | Buffer | Uint8Array;

export interface SseOptions {
  /** A keep-alive comment (`: keep-alive`) after this many ms without a write; default 15000; 0 = none. */
  ping?: number;
  /** Default: reply.statusCode. */
  status?: number;
  /** Added to reply.header() ones; Cache-Control: no-cache and X-Accel-Buffering: no unless set. */
  headers?: Record<string, string | number | Array<string | number>>;
}

/**
 * A streamed answer being written (reply.stream()): a Writable of Buffers and
 * strings over the core's streamed-answer calls. The head goes out with the
 * first write (or end(), or flushHeaders()). write() returns false while the
 * core holds more than 1 MiB for a slow client: wait for 'drain' (and 'close').
 * destroy(err) before the head sends an error answer (500, or err.statusCode
 * 400..599); after it, destroy() and abort() cut the answer (no last chunk:
 * the client sees it incomplete). 'close' without 'finish': the client left
 * (or the answer was cut). To HEAD, the head is the whole answer: writes are dropped.
 */
export declare class ReplyStream extends Writable {
  /** True once the head has gone out. */
  readonly headersSent: boolean;
  /** Sends the head now, before any body byte. */
  flushHeaders(): this;
  /** Cuts the answer: the client sees an incomplete message (before the head: the connection closes). */
  abort(): void;
}

/**
 * The writer of reply.sse(): an object-mode Writable of SseItems (write(item)), framed as
 * text/event-stream; the head went out when it was made. A keep-alive
 * comment goes out while nothing is written. To HEAD, it ends at once.
 */
export declare class EventStream extends ReplyStream {}

export declare class Reply {
  /** True once the response was sent (or a streamed answer was begun). */
  readonly sent: boolean;
  statusCode: number;
  code(status: number): this;
  status(status: number): this;
  header(name: string, value: string | number | Array<string | number>): this;
  headers(values: Record<string, string | number>): this;
  type(contentType: string): this;
  getHeader(name: string): string | undefined;
  /** Object → JSON, string → text, Buffer/Uint8Array → raw bytes; a Readable, an async
   * iterable or a generator is streamed (chunked, or sized with a content-length header):
   * backpressure to a slow client, a failure before the first chunk is an error answer,
   * after it a cut answer; a client that leaves destroys the source (or return()s the iterator). */
  send(payload?: unknown): this;
  /** A streamed answer written by hand (`pipeline(src, reply.stream(), cb)` works). */
  stream(options?: StreamAnswerOptions): ReplyStream;
  /** Server-sent events from a source (async iterable, generator, array or object-mode Readable of SseItems). */
  sse(source: StreamSource | AsyncIterable<SseItem> | Iterable<SseItem> | Readable, options?: SseOptions): EventStream;
  /** Server-sent events written to the returned EventStream. */
  sse(options?: SseOptions): EventStream;
}

/** Server-sent events framing (text/event-stream), e.g. for reply.stream() writers. */
export declare const sse: {
  /** One event as bytes (a string is its data). Throws a TypeError for a line break in event or id, a bad retry. */
  event(message: string | SseMessage): Buffer;
  /** A comment block (`: text\n\n`). */
  comment(text?: string): Buffer;
  /** content-type text/event-stream, cache-control no-cache, x-accel-buffering no. */
  readonly headers: Readonly<Record<string, string>>;
};

export declare class App {
  /** A route answered entirely by the core with a fixed response (never enters JS). */
  static(method: string, path: string, body: unknown, options?: StaticOptions): this;
  route(method: string, path: string, handler: Handler): this;
  route(method: string, path: string, options: StreamOptions, handler: StreamHandler): this;
  route(method: string, path: string, options: RuleOptions, handler: Handler): this;
  route(options: RouteOptions): this;
  route(options: StreamRouteOptions): this;
  get(path: string, handler: Handler): this;
  get(path: string, options: StreamOptions, handler: StreamHandler): this;
  get(path: string, options: RuleOptions, handler: Handler): this;
  post(path: string, handler: Handler): this;
  post(path: string, options: StreamOptions, handler: StreamHandler): this;
  post(path: string, options: RuleOptions, handler: Handler): this;
  put(path: string, handler: Handler): this;
  put(path: string, options: StreamOptions, handler: StreamHandler): this;
  put(path: string, options: RuleOptions, handler: Handler): this;
  patch(path: string, handler: Handler): this;
  patch(path: string, options: StreamOptions, handler: StreamHandler): this;
  patch(path: string, options: RuleOptions, handler: Handler): this;
  delete(path: string, handler: Handler): this;
  delete(path: string, options: StreamOptions, handler: StreamHandler): this;
  delete(path: string, options: RuleOptions, handler: Handler): this;
  head(path: string, handler: Handler): this;
  head(path: string, options: StreamOptions, handler: StreamHandler): this;
  head(path: string, options: RuleOptions, handler: Handler): this;
  options(path: string, handler: Handler): this;
  options(path: string, options: StreamOptions, handler: StreamHandler): this;
  options(path: string, options: RuleOptions, handler: Handler): this;
  /** CORS answered in the core: preflights natively, allow headers for allowed origins only. */
  cors(options: CorsOptions): this;
  /** Keys for routes with { apiKey: true }; header defaults to X-API-Key. */
  apiKeys(keys: string[], options?: { header?: string; query?: string }): this;
  /** App-wide rate limit for routes without their own (timeWindow in ms, default 60000). */
  rateLimit(options: { max: number; timeWindow?: number; keyHeader?: string }): this;
  /** Serves a folder under prefix natively: ETag/304, Range/206, gzip, no traversal. */
  staticDir(prefix: string, root: string, options?: { maxAge?: number; gzip?: boolean; index?: string }): this;
  /** gzip for handler answers of at least threshold bytes (default 1024). */
  compression(options?: { threshold?: number; level?: number }): this;
  /** GET path answers Prometheus metrics natively (default '/metrics'). */
  metrics(path?: string): this;
  /** One JSON line per answered request on stderr. */
  accessLog(enabled?: boolean): this;
  all(path: string, handler: Handler): this;
  /** Resolves with the address, e.g. "http://127.0.0.1:8080". */
  listen(options?: ListenOptions | number, callback?: (err: Error | null, address?: string) => void): Promise<string>;
  /** The bound port (0 when not listening). */
  readonly port: number;
  readonly url: string | undefined;
  readonly listening: boolean;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null;
  stats(): Stats | null;
  /** Graceful stop; resolves once every connection is closed (drain up to timeoutMs, default 5000). */
  close(timeoutMs?: number): Promise<void>;
}

export declare function app(options?: ListenOptions): App;
export declare const version: string;
export declare const abiVersion: number;
export declare const features: { reusePort: boolean };

declare const quicklane: {
  app: typeof app;
  App: typeof App;
  Request: typeof Request;
  StreamRequest: typeof StreamRequest;
  Reply: typeof Reply;
  ReplyStream: typeof ReplyStream;
  EventStream: typeof EventStream;
  sse: typeof sse;
  version: string;
  abiVersion: number;
  features: { reusePort: boolean };
};
export default quicklane;
