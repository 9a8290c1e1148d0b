// Type definitions for quicklane (Node binding).
/// <reference types="node" />
import { Readable, Writable } from 'node:stream';
import { EventEmitter } from 'node:events';

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

// ---- WebSockets -------------------------------------------------------------------

/** A message as sent: strings go as text, binary data as binary (unless isBinary says otherwise). */
export type WebSocketData = string | Buffer | ArrayBufferView | ArrayBuffer;

/** Limits and features of a WebSocket route (uWebSockets.js / Bun / ws names). */
export interface WebSocketOptions {
  /** Largest message accepted, in bytes (alias maxPayload); default 16 MiB; bigger closes with 1009. */
  maxPayloadLength?: number;
  maxPayload?: number;
  /** Unsent bytes per socket before sends are dropped (alias backpressureLimit); default 1 MiB
   * (16 MiB for the ws-shaped API). `send` returns -1 above half of it. */
  maxBackpressure?: number;
  backpressureLimit?: number;
  /** A send over maxBackpressure closes the socket (1008) instead of dropping the message.
   * Default false (true for the ws-shaped API: it never drops a message silently). */
  closeOnBackpressureLimit?: boolean;
  /** Seconds without a byte from the client before it is closed (1001); default 120; 0 = never. */
  idleTimeout?: number;
  /** Ping a silent client at half the idle timeout (default true, as uWebSockets.js / Bun). */
  sendPingsAutomatically?: boolean;
  sendPings?: boolean;
  /** Ping a silent client every this many ms (>= 1000; 0 = never); overrides sendPingsAutomatically. */
  pingInterval?: number;
  /** permessage-deflate when the client offers it: false (default), true / 'shared' (no context
   * kept per socket), 'dedicated' (contexts per socket), or DISABLED / SHARED_COMPRESSOR / DEDICATED_COMPRESSOR. */
  compression?: boolean | 'shared' | 'dedicated' | 0 | 1 | 2;
  perMessageDeflate?: boolean | object;
  /** Dedicated compression's window: 9..15 (default 15). */
  compressionWindowBits?: number;
}

export interface AcceptOptions<T = unknown> {
  /** Becomes ws.data. */
  data?: T;
  /** A subprotocol the client offered (Sec-WebSocket-Protocol). */
  protocol?: string;
  /** Extra headers of the 101 answer. */
  headers?: Record<string, string | number | string[]> | Array<[string, string]>;
}

/** How an upgrade handler accepts or refuses, now or later. */
export declare class UpgradeContext<T = unknown> {
  /** The subprotocols the client offered, in order. */
  readonly protocols: string[];
  /** True once accept() or refuse() was called, or the client left meanwhile (then req.aborted is
   * true, req.signal has fired, and accept/refuse return false). */
  readonly decided: boolean;
  /** Accepts (the 101 goes out, then `open`). False when the client has gone. Throws TypeError
   * for a subprotocol the client did not offer or a reserved header. */
  accept(options?: AcceptOptions<T>): boolean;
  /** Refuses with an HTTP answer (default 403; body object → JSON, string → text, Buffer → bytes,
   * none → {"detail": <reason>}). False when the client has gone. */
  refuse(status?: number, body?: unknown, options?: { headers?: Record<string, string>; contentType?: string }): boolean;
}

/**
 * A server-side WebSocket of app.ws(path, behavior). Calls after close are
 * safe: send returns 0, subscribe false, end false.
 */
export declare class ServerWebSocket<T = any> {
  /** User data (ctx.accept({ data }) in upgrade, or set in open). */
  data: T;
  /** 1 open, 2 closing, 3 closed. */
  readonly readyState: 1 | 2 | 3;
  readonly isClosed: boolean;
  /** The subprotocol chosen at the upgrade ('' when none). */
  readonly protocol: string;
  readonly remoteAddress: string;
  readonly subscriptions: string[];
  /** Bun's result: bytes sent (>= 1), -1 queued above the backpressure mark (drain follows),
   * 0 not sent (dropped over maxBackpressure, or the socket is closing/closed). */
  send(message: WebSocketData, isBinary?: boolean, compress?: boolean): number;
  sendText(text: string, compress?: boolean): number;
  sendBinary(data: WebSocketData, compress?: boolean): number;
  /** To every subscriber of topic but this socket; returns how many. */
  publish(topic: string, message: WebSocketData, isBinary?: boolean, compress?: boolean): number;
  publishText(topic: string, text: string): number;
  publishBinary(topic: string, data: WebSocketData): number;
  subscribe(topic: string): boolean;
  unsubscribe(topic: string): boolean;
  isSubscribed(topic: string): boolean;
  getTopics(): string[];
  getBufferedAmount(): number;
  /** The close handshake (default 1000; 1000, 1001, 1003, 1007-1014, 3000-4999; reason <= 123 bytes). */
  end(code?: number, reason?: string | Buffer): boolean;
  /** No arguments: cut at once (uWebSockets.js). With a code: the close handshake (Bun). */
  close(code?: number, reason?: string | Buffer): boolean | undefined;
  /** Cuts the connection (close follows with 1006). */
  terminate(): void;
  cork(fn: () => void): this;
  getRemoteAddress(): string;
  getRemoteAddressAsText(): string;
  getProtocol(): string;
  /** A ping frame (data <= 125 bytes, else RangeError; a number as its text), in order with the
   * messages and never dropped; the client's pong reaches the `pong` callback. Bun's result, as send:
   * bytes sent (>= 1), -1 queued above the backpressure mark, 0 when closing/closed. */
  ping(data?: WebSocketData | number): number;
  /** An unsolicited pong (a one-way heartbeat); as ping. */
  pong(data?: WebSocketData | number): number;
}

/** uWebSockets.js / Bun-shaped callbacks: text messages arrive as strings, binary as Buffers.
 * A callback that throws (or rejects) is logged and its socket closed with 1011. */
export interface WebSocketBehavior<T = any> extends WebSocketOptions {
  /** The upgrade request (readable until decided, across awaits). Return nothing/true to accept,
   * false to refuse (403), { data, protocol, headers } to accept with them, ctx to decide later;
   * throw an error with statusCode to refuse with it. */
  upgrade?: (req: Request, ctx: UpgradeContext<T>) => unknown | Promise<unknown>;
  /** req: the upgrade request, readable during the call only. */
  open?: (ws: ServerWebSocket<T>, req: Request) => unknown | Promise<unknown>;
  message?: (ws: ServerWebSocket<T>, message: string | Buffer, isBinary: boolean) => unknown | Promise<unknown>;
  drain?: (ws: ServerWebSocket<T>) => unknown;
  /** Once per opened socket; code 1005 when the client gave none, 1006 for a cut; reason a string. */
  close?: (ws: ServerWebSocket<T>, code: number, reason: string) => unknown;
  ping?: (ws: ServerWebSocket<T>, data: Buffer) => unknown;
  pong?: (ws: ServerWebSocket<T>, data: Buffer) => unknown;
}

/** The upgrade request as the ws-shaped API keeps it (a copy, readable for the socket's life). */
export declare class UpgradeRequest {
  readonly method: 'GET';
  readonly url: string;
  readonly path: string;
  readonly headers: Record<string, string | string[]>;
  readonly params: Record<string, string>;
  readonly query: Record<string, string | string[]>;
  readonly ip: string;
  readonly socket: { remoteAddress: string };
  readonly connection: { remoteAddress: string };
  readonly httpVersion: string;
}

/** A socket with the `ws` library's API. Messages are Buffers (binaryType 'nodebuffer'). */
export declare class WebSocket extends EventEmitter {
  /** ws's aliases: `new WebSocket.Server({ port })`. */
  static readonly Server: typeof WebSocketServer;
  static readonly WebSocketServer: typeof WebSocketServer;
  /** What an `upgrade` hook of the options accepted with ({ data }). */
  data: unknown;
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSING: 2;
  static readonly CLOSED: 3;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSING: 2;
  readonly CLOSED: 3;
  readonly readyState: 0 | 1 | 2 | 3;
  readonly bufferedAmount: number;
  readonly protocol: string;
  readonly extensions: string;
  readonly url: string | undefined;
  readonly isPaused: boolean;
  /** The ServerWebSocket underneath (subscribe, publish, ...). */
  readonly raw: ServerWebSocket<WebSocket>;
  binaryType: 'nodebuffer' | 'arraybuffer' | 'fragments';
  onopen: ((event: { type: string; target: WebSocket }) => void) | null;
  onmessage: ((event: { type: string; target: WebSocket; data: any; isBinary: boolean }) => void) | null;
  onclose: ((event: { type: string; target: WebSocket; code: number; reason: string; wasClean: boolean }) => void) | null;
  onerror: ((event: { type: string; target: WebSocket; error: Error; message: string }) => void) | null;
  /** cb(err) once handed to the kernel (at the next drain when the core is over half its limit). */
  send(data: WebSocketData | number, cb?: (err?: Error) => void): void;
  send(data: WebSocketData | number, options: { binary?: boolean; compress?: boolean; fin?: boolean; mask?: boolean },
    cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string | Buffer): void;
  terminate(): void;
  /** ws's ping: data <= 125 bytes (RangeError beyond; a number as its text); the client's answer is
   * a 'pong' event. cb(err) once handed to the kernel, or with an Error when not open. mask is ignored. */
  ping(data?: WebSocketData | number, mask?: boolean, cb?: (err?: Error) => void): void;
  ping(cb: (err?: Error) => void): void;
  ping(data: WebSocketData | number, cb: (err?: Error) => void): void;
  /** An unsolicited pong; as ping. */
  pong(data?: WebSocketData | number, mask?: boolean, cb?: (err?: Error) => void): void;
  pong(cb: (err?: Error) => void): void;
  pong(data: WebSocketData | number, cb: (err?: Error) => void): void;
  pause(): void;
  resume(): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): this;
  once(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

export type WebSocketHandler = (socket: WebSocket, req: UpgradeRequest) => unknown;

/** Options of the ws-shaped API: ws's own plus the route's limits. */
export interface WsShapedOptions extends WebSocketOptions {
  /** Chooses the subprotocol (default: the first the client offered); false: none. */
  handleProtocols?: (protocols: Set<string>, req: UpgradeRequest) => string | false;
  /** Accepts or refuses the upgrade (sync, or with cb(result, code, message, headers)). */
  verifyClient?: ((info: { origin?: string; secure: boolean; req: UpgradeRequest }) => boolean) |
    ((info: { origin?: string; secure: boolean; req: UpgradeRequest },
      cb: (result: boolean, code?: number, message?: string, headers?: Record<string, string>) => void) => void);
  /** Extra headers of the 101 answer. */
  headers?: Record<string, string>;
  /** As WebSocketBehavior.upgrade; the subprotocol choice stays handleProtocols'. */
  upgrade?: (req: Request, ctx: UpgradeContext) => unknown | Promise<unknown>;
}

export interface WebSocketServerOptions extends WsShapedOptions {
  /** Serve on this port with an app of its own (0 = ephemeral)... */
  port?: number;
  host?: string;
  backlog?: number;
  /** ...or add the route to this app (before it listens). */
  app?: App;
  /** Only this path (default: every path). */
  path?: string;
  /** Keep wss.clients (default true). */
  clientTracking?: boolean;
}

/** The `ws` library's WebSocketServer over quicklane. */
export declare class WebSocketServer extends EventEmitter {
  constructor(options: WebSocketServerOptions, callback?: () => void);
  readonly options: WebSocketServerOptions;
  readonly clients: Set<WebSocket>;
  readonly app: App;
  address(): { address: string; family: 'IPv4' | 'IPv6'; port: number } | null;
  close(cb?: (err?: Error) => void): void;
  /** Not available (throws): the core does the upgrade. */
  handleUpgrade(...args: unknown[]): never;
  shouldHandle(req: unknown): true;
  on(event: 'connection', listener: (socket: WebSocket, req: UpgradeRequest) => void): this;
  /** Before each 101: its lines ("Name: value"); lines pushed become headers of the answer. */
  on(event: 'headers', listener: (headers: string[], req: UpgradeRequest) => void): this;
  on(event: 'listening' | 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
}

export declare const DISABLED: 0;
export declare const SHARED_COMPRESSOR: 1;
export declare const DEDICATED_COMPRESSOR: 2;

export declare class App {
  /** A route answered entirely by the core with a fixed response (never enters JS). */
  static(method: string, path: string, body: unknown, options?: StaticOptions): this;
  route(method: string, path: string, handler: Handler): this;
  route(method: string, path: string, options: StreamOptions, handler: StreamHandler): this;
  route(method: string, path: string, options: RuleOptions, handler: Handler): this;
  route(options: RouteOptions): this;
  route(options: StreamRouteOptions): this;
  get(path: string, handler: Handler): this;
  /** @fastify/websocket's shape: a WebSocket route with a ws-shaped handler. */
  get(path: string, options: WsShapedOptions & { websocket: true }, handler: WebSocketHandler): this;
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
  /** A WebSocket route, uWebSockets.js / Bun-shaped (path patterns as for routes: '/chat/:room'). */
  ws<T = any>(path: string, behavior: WebSocketBehavior<T>): this;
  /** A WebSocket route with `ws`-library-shaped sockets. */
  ws(path: string, handler: WebSocketHandler): this;
  ws(path: string, options: WsShapedOptions, handler: WebSocketHandler): this;
  /** To every WebSocket subscribed to topic; returns how many (0 when not listening). */
  publish(topic: string, message: WebSocketData, isBinary?: boolean): number;
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
  ServerWebSocket: typeof ServerWebSocket;
  UpgradeContext: typeof UpgradeContext;
  UpgradeRequest: typeof UpgradeRequest;
  WebSocket: typeof WebSocket;
  WebSocketServer: typeof WebSocketServer;
  DISABLED: 0;
  SHARED_COMPRESSOR: 1;
  DEDICATED_COMPRESSOR: 2;
};
export default quicklane;
