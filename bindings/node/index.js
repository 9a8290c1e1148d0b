'use strict';
// quicklane for Node: a Fastify-style API over the native core, which runs on
// Node's own event loop. Handlers are called directly on the main thread.
//
//   const quicklane = require('quicklane');
//   const app = quicklane.app();
//   app.static('GET', '/ping', { message: 'pong' });        // never enters JS
//   app.get('/hello/:name', (req) => ({ hello: req.params.name }));
//   await app.listen({ host: '127.0.0.1', port: 8080 });

const { Readable, Writable } = require('node:stream');
const native = require('./lib/native');
const wsLib = require('./lib/ws');

const JSON_TYPE = 'application/json';
const TEXT_TYPE = 'text/plain; charset=utf-8';
const BINARY_TYPE = 'application/octet-stream';
const QL_OK = 0;
const QL_E_INVALID = -1;
const QL_E_GONE = -6;
const QL_E_ALREADY_SENT = -7;
const QL_E_AGAIN = -9;
const QL_E_TOO_LARGE = -10;

// Route handlers by id, across every app of this thread (the core calls
// dispatch(routeId, slot)). Live requests by slot, for abort notices.
const routes = [];
const routeTypes = [];  // per route id: the typed parameters of its schema (coerce)
const routeStreams = [];  // per route id: true when its body is streamed ({ stream: true })
const live = [];
// Apps that listen are kept reachable until closed (like a node:http server).
const listening = new Set();

const GONE_MESSAGE =
  'quicklane: request data is no longer available: the response was already sent ' +
  '(or the server closed); copy what you need before replying';

function warn(message) {
  process.emitWarning(message, { code: 'QUICKLANE' });
}

// The values the core's typed parameters accept, as JS values: what it
// validated is what the handler receives (Fastify's coerceTypes). Integers and
// numbers follow the core's (Python's) grammar, underscores between digits
// included; booleans its words.
const BOOL_WORDS = { 1: true, on: true, t: true, true: true, y: true, yes: true,
  0: false, off: false, f: false, false: false, n: false, no: false };
function coerce(value, type) {
  if (Array.isArray(value)) return value.map((v) => coerce(v, type));
  if (type === 'integer' || type === 'number') {
    const t = String(value).trim().replace(/_/g, '').toLowerCase();
    if (/^[+-]?inf(inity)?$/.test(t)) return t[0] === '-' ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(t)) return NaN;
    const n = Number(t);
    return Number.isNaN(n) ? value : n;
  }
  if (type === 'boolean') {
    const b = BOOL_WORDS[String(value).toLowerCase()];
    return b === undefined ? value : b;
  }
  return value;
}
function coerced(obj, types) {
  if (types) for (const [name, type] of types) if (obj[name] !== undefined) obj[name] = coerce(obj[name], type);
  return obj;
}

class Request {
  constructor(slot, types) {
    this._slot = slot;
    this._types = types;  // { path: [[name, type]], query: [...] } of the route's schema, or undefined
    this._done = false;       // answered: native data is gone
    this._aborted = false;
    this._method = undefined;
    this._url = undefined;
    this._path = undefined;
    this._params = undefined;
    this._query = undefined;
    this._headers = undefined;
    this._body = undefined;
    this._ip = undefined;
    this._ac = undefined;
  }
  _check() {
    if (this._done) throw new Error(GONE_MESSAGE);
  }
  get method() {
    if (this._method === undefined) { this._check(); this._method = native.method(this._slot); }
    return this._method;
  }
  /** Raw request target: path and query, as sent. */
  get url() {
    if (this._url === undefined) { this._check(); this._url = native.target(this._slot); }
    return this._url;
  }
  /** Path without the query, as sent (not percent-decoded). */
  get path() {
    if (this._path === undefined) { this._check(); this._path = native.path(this._slot); }
    return this._path;
  }
  /** The pattern of the matched route, in the core's spelling. */
  get routePattern() {
    this._check();
    return native.route_(this._slot);
  }
  /** Path parameters, percent-decoded. */
  get params() {
    if (this._params === undefined) {
      this._check();
      this._params = coerced(native.params(this._slot), this._types && this._types.path);
    }
    return this._params;
  }
  /** Query parameters, percent-decoded; a repeated name gives an array. */
  get query() {
    if (this._query === undefined) {
      this._check();
      const flat = native.query(this._slot);
      const q = Object.create(null);
      for (let i = 0; i < flat.length; i += 2) {
        const k = flat[i];
        const v = flat[i + 1];
        const prev = q[k];
        if (prev === undefined) q[k] = v;
        else if (Array.isArray(prev)) prev.push(v);
        else q[k] = [prev, v];
      }
      this._query = coerced(q, this._types && this._types.query);
    }
    return this._query;
  }
  /** Headers with lower-case names; repeated headers are joined with ", "
   * (set-cookie gives an array), as in node:http. */
  get headers() {
    if (this._headers === undefined) {
      this._check();
      const flat = native.headers(this._slot);
      const h = Object.create(null);
      for (let i = 0; i < flat.length; i += 2) {
        const k = flat[i];
        const v = flat[i + 1];
        const prev = h[k];
        if (prev === undefined) h[k] = k === 'set-cookie' ? [v] : v;
        else if (k === 'set-cookie') prev.push(v);
        else h[k] = prev + ', ' + v;
      }
      this._headers = h;
    }
    return this._headers;
  }
  /** One header (case-insensitive), without building the whole object. */
  header(name) {
    if (this._headers !== undefined) return this._headers[String(name).toLowerCase()];
    this._check();
    return native.header(this._slot, String(name));
  }
  /** The request body (a copy, made on first use). */
  get body() {
    if (this._body === undefined) { this._check(); this._body = native.body(this._slot); }
    return this._body;
  }
  /** The body parsed as JSON; invalid JSON throws an error with statusCode 400. */
  json() {
    const text = this._body !== undefined ? this._body.toString('utf8') : (this._check(), native.bodyText(this._slot));
    try {
      return JSON.parse(text);
    } catch (e) {
      const err = new Error('invalid JSON: ' + e.message);
      err.statusCode = 400;
      throw err;
    }
  }
  /** The body as UTF-8 text. */
  text() {
    if (this._body !== undefined) return this._body.toString('utf8');
    this._check();
    return native.bodyText(this._slot);
  }
  /** Client address ("127.0.0.1", "::1"). */
  get ip() {
    if (this._ip === undefined) { this._check(); this._ip = native.ip(this._slot); }
    return this._ip;
  }
  /** True once the client has gone before the answer. */
  get aborted() {
    return this._aborted;
  }
  /** An AbortSignal that fires when the client goes away before the answer. */
  get signal() {
    if (this._ac === undefined) {
      this._ac = new AbortController();
      if (this._aborted) this._ac.abort();
    }
    return this._ac.signal;
  }
}

// ---- streamed request bodies ({ stream: true }) ----------------------------

// Bytes asked of the core per read (one crossing into the addon each).
const READ_BYTES = 64 * 1024;

// What a failed streamed request keeps readable (each getter caches its value).
const KEPT_ON_FAILURE = ['method', 'url', 'path', 'routePattern', 'params', 'query', 'headers', 'ip', 'contentLength'];

function bodyError(status) {
  let err;
  if (status === QL_E_TOO_LARGE) {
    err = new Error('quicklane: request body too large (the core answered 413)');
    err.statusCode = 413;
  } else if (status === QL_E_INVALID) {
    err = new Error('quicklane: malformed request body (the core answered 400)');
    err.statusCode = 400;
  } else {
    status = QL_E_GONE;
    err = new Error('quicklane: request aborted before its body ended (the client left, the server closed, ' +
      'or the handler timed out)');
  }
  err.code = status === QL_E_TOO_LARGE ? 'QL_E_TOO_LARGE' : status === QL_E_INVALID ? 'QL_E_INVALID' : 'QL_E_GONE';
  return err;
}

/**
 * The request of a route declared with { stream: true }: a Request that is
 * also a stream.Readable of its body (Buffers), read from the core as it
 * arrives. Backpressure: the core is read only while the stream wants data;
 * unread bytes beyond the server's body window pause the client.
 */
class StreamRequest extends Readable {
  constructor(slot, types) {
    super({ highWaterMark: READ_BYTES });
    this._slot = slot;
    this._types = types;
    this._done = false;
    this._aborted = false;
    this._method = undefined;
    this._url = undefined;
    this._path = undefined;
    this._params = undefined;
    this._query = undefined;
    this._headers = undefined;
    this._body = undefined;
    this._ip = undefined;
    this._ac = undefined;
    this._wanted = false;     // _read() asked for data and push() has not said stop
    this._reads = 0;          // _read() calls, to see one made from inside push()
    this._pumping = false;
    this._again = false;
    this._finished = false;   // end pushed, or failed, or answered: the core is not read any more
    this._collecting = undefined;
    this._routePattern = undefined;
    this._contentLength = undefined;
  }
  /** The declared Content-Length; -1 when chunked, 0 without a body. */
  get contentLength() {
    if (this._contentLength === undefined) { this._check(); this._contentLength = native.contentLength(this._slot); }
    return this._contentLength;
  }
  get routePattern() {
    if (this._routePattern === undefined) { this._check(); this._routePattern = native.route_(this._slot); }
    return this._routePattern;
  }
  _read() {
    this._wanted = true;
    this._reads++;
    this._pump();
  }
  // Reads while the stream wants data; stops at QL_E_AGAIN (the core calls
  // onBody later) or when push() says the consumer is full (_read resumes).
  _pump() {
    if (this._pumping) { this._again = true; return; }
    this._pumping = true;
    try {
      do {
        this._again = false;
        while (this._wanted && !this._finished) {
          if (this._done) { this._stop(); return; }
          const r = native.bodyRead(this._slot, READ_BYTES);
          if (r === null) {
            this._finished = true;
            this.push(null);
          } else if (typeof r !== 'number') {
            const reads = this._reads;
            // Full: stop until the next _read(), unless the consumer asked again from inside push().
            if (!this.push(r) && this._reads === reads) this._wanted = false;
          } else if (r === QL_E_AGAIN) {
            break;
          } else {
            this._fail(r);
          }
        }
      } while (this._again && this._wanted && !this._finished);
    } finally {
      this._pumping = false;
    }
  }
  // The body failed: the core has answered (413, 400) or the client is gone,
  // so no answer of the handler can reach anyone. The request is finished
  // here (a handler that only piped the stream would otherwise hold it
  // forever); what it carried is copied first, so it stays readable, and a
  // later reply is ignored.
  _fail(status) {
    if (this._finished) return;
    this._finished = true;
    this._aborted = true;
    if (!this._done) {
      for (const name of KEPT_ON_FAILURE) {
        try { void this[name]; } catch (e) { /* nothing to keep */ }
      }
      this._done = true;
      live[this._slot] = undefined;
      native.finish500(this._slot);  // QL_E_GONE: frees the request (the core's answer, if any, stands)
    }
    this.emit('aborted');
    this.destroy(bodyError(status));
  }
  // Answered before the body was read to its end: the rest is the core's.
  _stop() {
    if (this._finished) return;
    this._finished = true;
    if (!this.destroyed) this.destroy();
  }
  _destroy(err, cb) {
    this._finished = true;
    // As node:http's IncomingMessage: an error nobody listens for is not an
    // uncaught exception (a client that leaves must not kill the server).
    cb(err && this.listenerCount('error') > 0 ? err : null);
  }
  /** The whole body, collected from the stream. */
  buffer() {
    if (this._body !== undefined) return Promise.resolve(this._body);
    if (this._collecting === undefined) {
      this._collecting = (async () => {
        const chunks = [];
        for await (const chunk of this) chunks.push(chunk);
        this._body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        return this._body;
      })();
    }
    return this._collecting;
  }
  /** The body as UTF-8 text (a Promise: the stream is collected). */
  text() {
    return this.buffer().then((b) => b.toString('utf8'));
  }
  /** The body parsed as JSON (a Promise); invalid JSON rejects with statusCode 400. */
  json() {
    return this.text().then((text) => {
      try {
        return JSON.parse(text);
      } catch (e) {
        const err = new Error('invalid JSON: ' + e.message);
        err.statusCode = 400;
        throw err;
      }
    });
  }
  /** The collected body, once buffer()/text()/json() has resolved. */
  get body() {
    if (this._body === undefined) {
      throw new TypeError('quicklane: this route streams its body: read it with `for await (const chunk of req)`, ' +
        'req.pipe(), or `await req.buffer()` / `req.text()` / `req.json()`');
    }
    return this._body;
  }
}
// Everything else of Request (method, url, params, headers, signal, ...).
for (const name of Object.getOwnPropertyNames(Request.prototype)) {
  if (name === 'constructor' || Object.prototype.hasOwnProperty.call(StreamRequest.prototype, name)) continue;
  Object.defineProperty(StreamRequest.prototype, name, Object.getOwnPropertyDescriptor(Request.prototype, name));
}

class Reply {
  constructor(req) {
    this._req = req;
    this._status = 200;
    this._headers = undefined;   // flat [name, value, ...]
    this._type = undefined;
    this.sent = false;
  }
  /** Sets the status code (200..599). */
  code(status) {
    this._status = status | 0;
    return this;
  }
  status(status) {
    return this.code(status);
  }
  get statusCode() {
    return this._status;
  }
  set statusCode(v) {
    this._status = v | 0;
  }
  /** Adds a response header (Content-Length, Date, Server, Connection and
   * Transfer-Encoding are written by the core). */
  header(name, value) {
    name = String(name);
    if (name.toLowerCase() === 'content-type') {
      this._type = String(value);
      return this;
    }
    if (this._headers === undefined) this._headers = [];
    if (Array.isArray(value)) for (const v of value) this._headers.push(name, String(v));
    else this._headers.push(name, String(value));
    return this;
  }
  headers(obj) {
    for (const k of Object.keys(obj)) this.header(k, obj[k]);
    return this;
  }
  type(contentType) {
    this._type = String(contentType);
    return this;
  }
  getHeader(name) {
    name = String(name).toLowerCase();
    if (name === 'content-type') return this._type;
    const h = this._headers || [];
    for (let i = 0; i < h.length; i += 2) if (h[i].toLowerCase() === name) return h[i + 1];
    return undefined;
  }
  /** Sends the response: object → JSON, string → text, Buffer/Uint8Array → raw. */
  send(payload) {
    if (this.sent) {
      warn(`reply already sent for ${this._req._method || 'a request'}; second send ignored`);
      return this;
    }
    let body;
    let type = this._type;
    if (isStreamSource(payload)) {
      // Fastify's reply.send(stream): the head goes out with the first chunk.
      let rs;
      try {
        rs = new ReplyStream(this, undefined, false);
      } catch (e) {
        stopSource(payload, undefined);
        errorReply(this, e);  // a bad declared length: still unanswered
        return this;
      }
      pump(payload, rs, checkChunk);
      return this;
    }
    if (payload === undefined) {
      body = undefined;
    } else if (typeof payload === 'string') {
      body = payload;
      if (type === undefined) type = TEXT_TYPE;
    } else if (payload instanceof Uint8Array || payload instanceof ArrayBuffer) {
      body = payload;
      if (type === undefined) type = BINARY_TYPE;
    } else if (ArrayBuffer.isView(payload)) {
      body = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
      if (type === undefined) type = BINARY_TYPE;
    } else {
      body = JSON.stringify(payload);
      if (type === undefined) type = JSON_TYPE;
    }
    this._finish(this._status, type, this._headers, body);
    return this;
  }
  /**
   * A streamed answer written by hand: a stream.Writable of Buffers and strings
   * (`pipeline(src, reply.stream())` works). The head goes out with the first
   * write (or end(), or flushHeaders()); chunked unless a length is declared
   * (opts.length or reply.header('content-length', n)). write() returns false
   * while the core holds more than 1 MiB for a slow client: wait for 'drain'.
   * destroy(err) before the head is an error answer (500, or err.statusCode);
   * after it, and abort(), cut the answer (the client sees it incomplete).
   * 'close' without 'finish' when the client left.
   * opts: { status, headers, contentType, length }.
   */
  stream(opts) {
    if (this.sent) throw new Error('quicklane: reply already sent; stream() needs an unanswered request');
    return new ReplyStream(this, opts, false);
  }
  /**
   * Server-sent events (text/event-stream, Cache-Control: no-cache,
   * X-Accel-Buffering: no); the head goes out at once. With a source (async
   * iterable, generator or object-mode Readable of events), streams it; without
   * one, returns the EventStream to write events to. An event is a string
   * (its data), an object { data, event, id, retry, comment } (data not a string
   * → JSON), or a Buffer already framed (sse.event()). A keep-alive comment goes
   * out every opts.ping ms (default 15000; 0 = never) while nothing else does.
   * opts: { ping, status, headers }.
   */
  sse(source, opts) {
    const isSource = (v) => isStreamSource(v) || Array.isArray(v);
    if (opts === undefined && source !== undefined && source !== null && !isSource(source) &&
        typeof source === 'object' && !(source instanceof Uint8Array)) {
      opts = source;
      source = undefined;
    }
    if (this.sent) throw new Error('quicklane: reply already sent; sse() needs an unanswered request');
    const es = new EventStream(this, opts);
    if (source !== undefined && source !== null) {
      if (!isSource(source)) {
        es.destroy(new TypeError('reply.sse(source): source must be an async iterable, a generator or a Readable'));
      } else {
        pump(source, es, undefined);
      }
    }
    return es;
  }
  _finish(status, type, headers, body) {
    const req = this._req;
    this.sent = true;
    if (req._done) return;  // the server closed under this request
    let st;
    try {
      st = native.respond(req._slot, status, type, headers, body);
    } catch (e) {
      // Bad fields (status out of range, reserved header): answer 500 and say why.
      warn(`invalid response (${e.message}); sent 500 instead`);
      st = native.respond(req._slot, 500, JSON_TYPE, undefined, '{"detail":"Internal Server Error"}');
    }
    if (st !== QL_E_ALREADY_SENT) {
      req._done = true;
      live[req._slot] = undefined;
      if (req._finished === false) req._stop();  // a streamed body not read to its end
    }
    if (st !== QL_OK && st !== QL_E_GONE) warn(`respond failed with status ${st}`);
  }
}

function errorReply(reply, err) {
  const rs = reply._stream;
  if (rs !== undefined && !rs.destroyed && !rs._ended) {
    rs.destroy(err instanceof Error ? err : new Error(String(err)));  // before the head: an error answer; after: cut
    return;
  }
  if (reply.sent) {
    warn(`handler failed after its reply was sent: ${err && err.stack ? err.stack : err}`);
    return;
  }
  errorAnswer(reply, err);
}

// The error answer of an unanswered request: err.statusCode in 400..599 with
// its message, else 500 (logged).
function errorAnswer(reply, err) {
  let status = err && (err.statusCode || err.status);
  status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
  let detail;
  if (status >= 500) {
    detail = 'Internal Server Error';
    if (!reply._req._aborted) console.error('quicklane: handler error:', err);
  } else {
    detail = err && err.message ? String(err.message) : 'error';
  }
  const headers = err && err.headers && typeof err.headers === 'object'
    ? Object.entries(err.headers).flatMap(([k, v]) => [k, String(v)]) : undefined;
  reply._finish(status, JSON_TYPE, headers, JSON.stringify({ detail }));
}

function complete(reply, value) {
  if (reply.sent) return;
  if (value === reply) return;  // `return reply`: sent later with reply.send()
  if (value === undefined) {
    const err = new Error('handler resolved without a value and without reply.send(); ' +
      'return a value, or `return reply` and call reply.send() later');
    errorReply(reply, err);
    return;
  }
  try {
    reply.send(value);
  } catch (e) {
    // A value send() cannot convert (a BigInt in JSON, a cycle): a 500, not an uncaught exception.
    errorReply(reply, e);
  }
}

// ---- streamed answers ------------------------------------------------------
//
// Over ql_respond_start(_sized) / ql_respond_write / ql_respond_end /
// ql_respond_abort. Backpressure is the core's: a write that leaves more than
// QL_DRAIN_HIGH (1 MiB) buffered for the socket holds the Writable's callback
// until the core's on_drain (at QL_DRAIN_LOW, 256 KiB), so the writer (and a
// pumped source) stops while the client does not read.

const DRAIN_HIGH = native.drainHigh || 1024 * 1024;
const EMPTY = Buffer.alloc(0);
// A Writable's own buffer in front of the core (bytes; events for SSE).
const STREAM_HWM = 64 * 1024;
const SSE_HWM = 16;
const KEEP_ALIVE = Buffer.from(': keep-alive\n\n');
// A source that never waits (its chunks are ready) yields to the event loop
// after this many bytes, so other connections are served meanwhile.
const YIELD_BYTES = 1024 * 1024;

// Once a streamed answer has started, the core tells no abort: a client that
// leaves is seen by the next write. Streams that write nothing for a second
// (an idle source, a wait for 'drain' that never comes because the socket
// closed) are probed with empty writes, so the source is released in ~1 s.
const PROBE_MS = 1000;
const probing = new Set();
let probeTimer;
function probeAll() {
  const now = Date.now();
  for (const rs of probing) if (now - rs._active >= PROBE_MS) rs._probe();
  if (probing.size === 0 && probeTimer !== undefined) {
    clearInterval(probeTimer);
    probeTimer = undefined;
  }
}
function watch(rs) {
  probing.add(rs);
  if (probeTimer === undefined) {
    probeTimer = setInterval(probeAll, PROBE_MS);
    probeTimer.unref();
  }
}

function isStreamSource(v) {
  if (v === null || typeof v !== 'object') return false;
  if (v instanceof Uint8Array || v instanceof ArrayBuffer || Array.isArray(v)) return false;
  if (v instanceof ReplyStream) return false;
  if (typeof v[Symbol.asyncIterator] === 'function') return true;  // Readable, async generator, ReadableStream
  if (typeof v.pipe === 'function' && typeof v.on === 'function' && typeof v.read === 'function') return true;  // old streams
  return Object.prototype.toString.call(v) === '[object Generator]';
}

function checkChunk(chunk) {
  if (typeof chunk === 'string' || chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  const what = chunk === null ? 'null' : Array.isArray(chunk) ? 'an array' : typeof chunk === 'object'
    ? `an object (${(chunk.constructor && chunk.constructor.name) || 'Object'})` : typeof chunk;
  throw new TypeError(`quicklane: a streamed chunk must be a Buffer, a Uint8Array or a string, not ${what} ` +
    '(an object-mode stream? map it to bytes, or use reply.sse() for events)');
}

function iteratorOf(src) {
  if (typeof src[Symbol.asyncIterator] === 'function') return src[Symbol.asyncIterator]();
  if (typeof src.pipe === 'function' && typeof src.read === 'function' && typeof src[Symbol.iterator] !== 'function') {
    return new Readable({ objectMode: true }).wrap(src)[Symbol.asyncIterator]();  // a pre-async-iterator stream
  }
  return src[Symbol.iterator]();
}

// Stops a source: destroy() for streams, return() for iterators (an async
// generator runs its finally blocks at its next yield).
function stopSource(src, it) {
  try {
    if (typeof src.destroy === 'function') src.destroy();
    if (it !== undefined && typeof it.return === 'function') {
      const r = it.return();
      if (r && typeof r.then === 'function') r.then(undefined, () => {});
    }
  } catch (e) { /* a source that fails to stop has nothing more to give */ }
}

function waitWritable(sink) {
  return new Promise((resolve) => {
    const done = () => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

// Pulls a source into a ReplyStream with backpressure: the next chunk is
// asked for only while the sink takes more. A failure before the first chunk
// is an error answer (the head is not out yet), after it a cut; the sink
// closing first (the client left) stops the source.
async function pump(src, sink, encode) {
  let it;
  let done = false;
  const onClose = () => { if (!done) stopSource(src, it); };
  sink.once('close', onClose);
  try {
    it = iteratorOf(src);
    let since = 0;
    if (sink._headOnly) {  // SSE to HEAD: the head was the whole answer
      sink.end();
      return;
    }
    for (;;) {
      const r = await it.next();
      if (sink.destroyed || sink.writableEnded) break;
      if (r.done) {
        done = true;
        sink.end();
        break;
      }
      const chunk = encode !== undefined ? encode(r.value) : r.value;
      if (sink.write(chunk)) {
        since += typeof chunk === 'string' ? chunk.length : chunk.byteLength || 1;
        if (since >= YIELD_BYTES) {
          since = 0;
          await new Promise(setImmediate);
        }
      } else {
        since = 0;
        await waitWritable(sink);
        if (sink.destroyed) break;
      }
      if (sink._headOnly) {  // HEAD: the head is out, the rest would be dropped
        sink.end();
        break;
      }
    }
  } catch (err) {
    if (!sink.destroyed) sink.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}

function headerList(h) {
  if (h === undefined || h === null) return [];
  if (Array.isArray(h)) return h.map(String);
  const out = [];
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.push(k, String(x));
    else if (v !== undefined) out.push(k, String(v));
  }
  return out;
}

function streamLength(v, what) {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`quicklane: ${what} must be a non-negative integer (bytes)`);
  return n;
}

/**
 * A streamed answer (reply.stream(), reply.send(stream)): a Writable of
 * Buffers and strings over the core's streamed-answer calls.
 */
class ReplyStream extends Writable {
  constructor(reply, opts, sse) {
    super(sse ? { objectMode: true, highWaterMark: SSE_HWM } : { highWaterMark: STREAM_HWM, decodeStrings: false });
    const o = opts || {};
    const req = reply._req;
    this._reply = reply;
    this._req = req;
    this._slot = req._slot;
    this._status = o.status !== undefined ? o.status | 0 : o.statusCode !== undefined ? o.statusCode | 0 : reply._status;
    this._type = o.contentType || o.type || reply._type || (sse ? 'text/event-stream' : BINARY_TYPE);
    // Content-Length is the core's to write: a declared length makes a sized stream.
    let length = o.length;
    const flat = (reply._headers || []).concat(headerList(o.headers));
    const headers = [];
    for (let i = 0; i < flat.length; i += 2) {
      const k = flat[i].toLowerCase();
      if (k === 'content-length') {
        if (length === undefined) length = flat[i + 1];
      } else if (k === 'content-type') {
        this._type = flat[i + 1];
      } else {
        headers.push(flat[i], flat[i + 1]);
      }
    }
    this._headers = headers;
    this._length = length === undefined || length === null ? -1 : streamLength(length, 'the stream length');
    this._headSent = false;
    this._headOnly = false;  // HEAD: the head went out and the answer ended; writes are dropped
    this._ended = false;     // finished natively (end, abort, error answer, or gone)
    this._gone = false;      // the client left (or the server closed)
    this._cut = false;       // abort(): cut even before the head (no error answer)
    this._held = null;       // _write's callback, held while the core is over QL_DRAIN_HIGH
    this._active = Date.now();
    this._written = 0;       // bytes given to the core (sized answers: checked at the end)
    this._sse = sse;
    reply.sent = true;
    reply._stream = this;
    req._stream = this;
    if (req._done) {  // the server closed under this request already
      this._ended = true;
      this._gone = true;
      this.destroy();
    }
  }

  /** True once the head (status and headers) has gone out. */
  get headersSent() { return this._headSent; }

  /** Sends the head now, without a body byte yet. */
  flushHeaders() {
    if (!this._headSent && !this._ended && !this.destroyed) this._start(undefined);
    return this;
  }

  /** Cuts the answer: the client sees an incomplete message (before the head: the connection closes). */
  abort() {
    this._cut = true;
    this.destroy();
  }

  // The head, with the first bytes. False when the answer cannot go on.
  _start(first) {
    let st;
    try {
      st = native.respondStart(this._slot, this._status, this._type, this._headers, first, this._length);
    } catch (e) {
      // Bad head fields (status, a reserved header, a first chunk over the declared length): still unanswered.
      warn(`invalid streamed response (${e.message}); sent 500 instead`);
      native.respond(this._slot, 500, JSON_TYPE, undefined, '{"detail":"Internal Server Error"}');
      this._settle();
      this.destroy(e);
      return false;
    }
    if (st !== QL_OK) {
      if (st === QL_E_GONE) {
        this._settle();  // the addon freed the slot
        this._clientGone();
      } else {
        warn(`streamed answer could not start (status ${st})`);
        this._cut = true;
        this.destroy();
      }
      return false;
    }
    this._headSent = true;
    this._active = Date.now();
    if (first !== undefined) this._written += typeof first === 'string' ? Buffer.byteLength(first) : first.byteLength;
    if (this._req.method === 'HEAD') {
      // To HEAD the head is the whole answer (the core drops body bytes).
      this._headOnly = true;
      native.respondEnd(this._slot);
      this._settle();
      return true;
    }
    watch(this);
    return true;
  }

  _write(chunk, encoding, cb) {
    if (this._ended) return cb();  // HEAD: dropped
    if (typeof chunk === 'string' && encoding !== 'utf8' && encoding !== 'utf-8' && encoding !== 'buffer' &&
        !this._sse) {
      chunk = Buffer.from(chunk, encoding);
    }
    if (this._sse) {
      try {
        chunk = sseFrame(chunk);
      } catch (e) {
        return cb(e);
      }
    } else if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
      try {
        chunk = checkChunk(chunk);
      } catch (e) {
        return cb(e);
      }
    }
    if (!this._headSent) {
      if (!this._start(chunk)) return undefined;  // destroyed (or gone): the callback no longer matters
      if (this._ended) return cb();
      const size = typeof chunk === 'string' ? chunk.length : chunk.byteLength;
      if (size <= DRAIN_HIGH / 2) return cb();
      chunk = EMPTY;  // a big first chunk: ask whether the core is over its mark (and arm its drain notice)
    }
    const st = native.respondWrite(this._slot, chunk);
    this._active = Date.now();
    if (st === 0 || st === 1) {
      if (this._length >= 0) this._written += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      if (this._pingTimer !== undefined) this._pingTimer.refresh();
      if (st === 1) this._held = cb;  // released by onDrain
      else cb();
      return undefined;
    }
    if (st === QL_E_GONE) {
      this._clientGone();
      return undefined;
    }
    if (st === QL_E_INVALID) {
      return cb(new RangeError(`quicklane: more bytes than the declared length (${this._length}) of this answer`));
    }
    return cb(new Error(`quicklane: streamed write failed (status ${st})`));
  }

  _final(cb) {
    if (this._ended) return cb();
    if (!this._headSent) {
      if (!this._start(undefined)) return cb();
      if (this._ended) return cb();
    }
    if (this._length >= 0 && this._written < this._length) {
      warn(`streamed answer ended after ${this._written} of its ${this._length} declared bytes; ` +
        'the connection closes (the client sees it incomplete)');
    }
    native.respondEnd(this._slot);
    this._settle();
    cb();
    return undefined;
  }

  _destroy(err, cb) {
    this._held = null;
    if (this._pingTimer !== undefined) {
      clearTimeout(this._pingTimer);
      this._pingTimer = undefined;
    }
    if (!this._ended) {
      if (this._gone) {
        // Unanswered and abandoned: ql_respond frees it (QL_E_GONE); started: the core freed it.
        if (!this._headSent) native.finish500(this._slot);
      } else if (!this._headSent && err && !this._cut) {
        // Nothing is out yet: a clean error answer.
        errorAnswer(this._reply, err);
        this._settle();
        return cb(err && this.listenerCount('error') > 0 ? err : null);
      } else {
        if (err && this._headSent) console.error('quicklane: streamed answer failed; cut:', err);
        native.respondAbort(this._slot);
      }
      this._settle();
    }
    // As node:http's ServerResponse: an error nobody listens for is not an
    // uncaught exception (pipeline and finished() listen).
    cb(err && this.listenerCount('error') > 0 ? err : null);
    return undefined;
  }

  // Finished natively: the request data goes away, the slot is free.
  _settle() {
    if (this._ended) return;
    this._ended = true;
    probing.delete(this);
    const req = this._req;
    if (live[this._slot] === req) live[this._slot] = undefined;
    req._done = true;
    if (req._finished === false) req._stop();  // a streamed body not read to its end
  }

  _onDrain() {
    if (this._held === null) return;
    // Deferred: the notice may come from inside another native call.
    process.nextTick(() => {
      const cb = this._held;
      if (cb === null) return;
      this._held = null;
      this._active = Date.now();
      cb();
    });
  }

  // Empty writes: the first after the client left frees the request (QL_OK),
  // the next says QL_E_GONE. Below the mark again (a drain notice folded into
  // this very call): a held write goes on.
  _probe() {
    if (this._ended || this.destroyed) return;
    this._active = Date.now();
    let st = native.respondWrite(this._slot, EMPTY);
    if (st === 0 || st === 1) st = native.respondWrite(this._slot, EMPTY);
    if (st === QL_E_GONE) this._clientGone();
    else if (st === 0) this._onDrain();
  }

  _clientGone() {
    if (this._gone) return;
    this._gone = true;
    const req = this._req;
    req._aborted = true;
    if (this._headSent) this._settle();  // the core freed it (or frees it at the next write)
    if (req._ac !== undefined) req._ac.abort();
    this.destroy();
  }

  _serverGone() {
    this._gone = true;
    this._ended = true;
    probing.delete(this);
    this.destroy();
  }
}

// ---- server-sent events ------------------------------------------------------

const LINE_BREAK = /\r\n|\r|\n/;
const SSE_FIELDS = ['data', 'event', 'id', 'retry', 'comment'];

function sseField(name, value) {
  const s = String(value);
  if (/[\r\n]/.test(s) || (name === 'id' && s.includes('\0'))) {
    throw new TypeError(`quicklane: an SSE ${name} cannot hold a line break${name === 'id' ? ' or NUL' : ''}`);
  }
  return `${name}: ${s}\n`;
}

/** The text/event-stream framing of one event (see sse.event). */
function sseText(msg) {
  if (typeof msg === 'string') msg = { data: msg };
  if (msg === null || typeof msg !== 'object' || !SSE_FIELDS.some((k) => msg[k] !== undefined)) {
    throw new TypeError('quicklane: an SSE event is a string, or an object with data, event, id, retry or comment');
  }
  let out = '';
  if (msg.comment !== undefined) for (const line of String(msg.comment).split(LINE_BREAK)) out += `: ${line}\n`;
  if (msg.event !== undefined) out += sseField('event', msg.event);
  if (msg.id !== undefined) out += sseField('id', msg.id);
  if (msg.retry !== undefined) {
    if (!Number.isSafeInteger(msg.retry) || msg.retry < 0) throw new TypeError('quicklane: SSE retry must be a non-negative integer (ms)');
    out += `retry: ${msg.retry}\n`;
  }
  if (msg.data !== undefined) {
    const d = msg.data;
    const text = typeof d === 'string' ? d : d instanceof Uint8Array ? Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('utf8')
      : JSON.stringify(d);
    for (const line of String(text).split(LINE_BREAK)) out += `data: ${line}\n`;
  }
  return out + '\n';
}

// One item of an SSE source as bytes: a Buffer is taken as already framed.
function sseFrame(item) {
  if (item instanceof Uint8Array) return item;
  return Buffer.from(sseText(item));
}

const SSE_HEADERS = Object.freeze({
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
});

/**
 * The EventStream of reply.sse(): an object-mode Writable of events (strings,
 * { data, event, id, retry, comment }, or framed Buffers), with keep-alive
 * pings while idle. The head goes out at once.
 */
class EventStream extends ReplyStream {
  constructor(reply, opts) {
    const o = opts || {};
    const ping = o.ping === undefined ? 15000 : o.ping;
    if (typeof ping !== 'number' || !(ping >= 0) || ping > 0x7fffffff) {
      throw new RangeError('quicklane: sse ping must be a number of ms (0 = none)');
    }
    const headers = headerList(o.headers);
    const has = (name) => {
      for (let i = 0; i < headers.length; i += 2) if (headers[i].toLowerCase() === name) return true;
      const h = reply._headers || [];
      for (let i = 0; i < h.length; i += 2) if (h[i].toLowerCase() === name) return true;
      return false;
    };
    if (!has('cache-control')) headers.push('Cache-Control', 'no-cache');
    if (!has('x-accel-buffering')) headers.push('X-Accel-Buffering', 'no');
    super(reply, { status: o.status, headers, contentType: 'text/event-stream' }, true);
    if (!this.destroyed) this._start(undefined);
    // To HEAD the head is all: the stream ends, so a push-style producer sees 'close'.
    if (this._headOnly) this.end();
    if (ping > 0 && !this._ended && !this.destroyed) {
      this._pingTimer = setTimeout(() => this._ping(), ping);
      this._pingTimer.unref();
    }
  }

  // A comment line, so proxies and clients see life on an idle stream.
  _ping() {
    if (this._ended || this.destroyed) return;
    if (this._held === null) {
      const st = native.respondWrite(this._slot, KEEP_ALIVE);
      if (st === QL_E_GONE) {
        this._clientGone();
        return;
      }
    }
    if (this._pingTimer !== undefined) this._pingTimer.refresh();
  }
}

/** Server-sent events framing, for reply.stream() writers and framed items. */
const sse = {
  /** One event as bytes: a string is its data; { data (non-string → JSON), event, id, retry (ms), comment }.
   * Line breaks in data and comment (CRLF, CR, LF) become one `data:` / `:` line each. */
  event(msg) { return Buffer.from(sseText(msg)); },
  /** A comment block (`: text`), ignored by clients; keeps idle connections open. */
  comment(text) { return Buffer.from(sseText({ comment: text === undefined ? '' : text })); },
  /** The head of an event stream, for reply.stream({ headers: sse.headers }). */
  headers: SSE_HEADERS,
};

// Called by the core (through napi_make_callback) for every request of a JS route.
function dispatch(routeId, slot) {
  const handler = routes[routeId];
  const req = routeStreams[routeId] === true ? new StreamRequest(slot, routeTypes[routeId])
    : new Request(slot, routeTypes[routeId]);
  const reply = new Reply(req);
  live[slot] = req;
  let result;
  try {
    result = handler(req, reply);
  } catch (err) {
    errorReply(reply, err);
    return;
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    result.then((v) => complete(reply, v), (err) => errorReply(reply, err));
  } else if (result !== undefined) {
    complete(reply, result);
  }
  // A sync handler that returns undefined answers later with reply.send().
}

function onAbort(slot) {
  const req = live[slot];
  if (req === undefined) return;
  req._aborted = true;
  // A streamed answer whose head has not gone out yet (only then is there an abort notice).
  if (req._stream !== undefined) req._stream._clientGone();
  if (req._finished === false) {
    // A streamed body cut short: the core tells why (413, 400, client left).
    const st = native.bodyDrain(slot);
    req._fail(st === QL_E_TOO_LARGE || st === QL_E_INVALID ? st : QL_E_GONE);
  }
  if (req._ac !== undefined) req._ac.abort();
}

// A streamed body can be read again (after a read gave QL_E_AGAIN).
function onBody(slot) {
  const req = live[slot];
  if (req !== undefined && req._wanted === true) req._pump();
}

// A streamed answer fell to QL_DRAIN_LOW buffered bytes: its writer goes on.
function onDrain(slot) {
  const req = live[slot];
  if (req !== undefined && req._stream !== undefined) req._stream._onDrain();
}

native.init(dispatch, onAbort, onBody, onDrain);

function markGone(slots) {
  for (const slot of slots) {
    const req = live[slot];
    if (req !== undefined) {
      req._done = true;
      req._aborted = true;
      live[slot] = undefined;
      if (req._finished === false) req._fail(QL_E_GONE);
      // The server closed under a streamed answer: the addon has cut it.
      if (req._stream !== undefined) req._stream._serverGone();
      if (req._ac !== undefined) req._ac.abort();
    }
  }
}

// Fastify's `:name` and `*` map onto the core's patterns as they are
// (`:name`, `*name`); a bare trailing `*` becomes `*wildcard`.
function corePattern(path) {
  if (typeof path !== 'string' || path[0] !== '/') throw new TypeError('route path must start with "/"');
  return path.endsWith('/*') ? path + 'wildcard' : path;
}

function staticResponse(body, opts) {
  const o = opts || {};
  const status = o.status || o.statusCode || 200;
  let type = o.contentType || o.type;
  let payload;
  if (typeof body === 'string') {
    payload = body;
    if (!type) type = TEXT_TYPE;
  } else if (body instanceof Uint8Array) {
    payload = body;
    if (!type) type = BINARY_TYPE;
  } else if (body === undefined) {
    payload = undefined;
  } else {
    payload = JSON.stringify(body);
    if (!type) type = JSON_TYPE;
  }
  const headers = o.headers ? Object.entries(o.headers).flatMap(([k, v]) => [k, String(v)]) : undefined;
  return [status, type, headers, payload];
}

// Fastify's route schema ({ body, params, querystring }, plain JSON Schema as
// TypeBox builds it) → the core's body schema and typed-parameter specs.
const PARAM_KEYS = ['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
  'pattern', 'enum'];
// The typed (integer, number, boolean) parameters of a Fastify schema, for coerce().
function schemaTypes(schema) {
  const out = {};
  for (const [where, s] of [['path', schema.params], ['query', schema.querystring]]) {
    const props = s && typeof s === 'object' && s.properties;
    if (!props || typeof props !== 'object') continue;
    const typed = Object.entries(props).filter(([, p]) => p && ['integer', 'number', 'boolean'].includes(p.type))
      .map(([name, p]) => [name, p.type]);
    if (typed.length) out[where] = typed;
  }
  return out.path || out.query ? out : undefined;
}

function nativeSchemas(schema) {
  if (typeof schema !== 'object' || schema === null) throw new TypeError('schema must be { body, params, querystring }');
  const body = schema.body === undefined ? '' : JSON.stringify(schema.body);
  const specs = {};
  for (const [where, s] of [['path', schema.params], ['query', schema.querystring]]) {
    if (s === undefined) continue;
    if (typeof s !== 'object' || s === null || typeof s.properties !== 'object') {
      throw new TypeError(`schema.${where === 'path' ? 'params' : 'querystring'} must be an object schema with properties`);
    }
    const required = new Set(s.required || []);
    for (const [name, p] of Object.entries(s.properties)) {
      const spec = { in: where };
      for (const k of PARAM_KEYS) if (p[k] !== undefined) spec[k] = p[k];
      if (p.type === 'string' && p.format === 'uuid') spec.type = 'uuid';
      if (where === 'query' && required.has(name)) spec.required = true;
      specs[name] = spec;
    }
  }
  return [body, Object.keys(specs).length ? JSON.stringify(specs) : ''];
}

function u53(v, name) {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer (bytes)`);
  return v;
}

function u32(v, name) {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} must be an integer from 0 to 4294967295`);
  return v;
}

class App {
  constructor(options) {
    this._options = Object.assign({}, options);
    this._app = native.appNew();
    this._server = undefined;
    this._closing = undefined;
    this._port = 0;
    this._host = undefined;
  }

  /** A route answered entirely in the core with a fixed response (object →
   * JSON, string → text, Buffer → raw). opts: { status, contentType, headers }. */
  static(method, path, body, opts) {
    const [status, type, headers, payload] = staticResponse(body, opts);
    native.static(this._app, String(method).toUpperCase(), corePattern(path), status, type, headers, payload);
    if (opts) this._routeRules(method, path, opts);
    return this;
  }

  // Native rules of one route: { rateLimit: { max, timeWindow (ms), keyHeader }, apiKey: true,
  // cache: { ttl (ms), vary: [headers] } }.
  // { stream: true, maxBodyBytes }: the body is read as it arrives (req is a Readable).
  // The core's options replace a route's rules whole, so stream goes with every call.
  _routeRules(method, path, opts) {
    const rl = opts.rateLimit;
    const cache = opts.cache;
    const schema = opts.schema;
    const stream = Boolean(opts.stream);
    if (opts.maxBodyBytes !== undefined && !stream) {
      throw new TypeError('maxBodyBytes of a route applies to streamed bodies ({ stream: true }); ' +
        'the buffered limit is listen({ maxBodyBytes })');
    }
    if (!rl && !opts.apiKey && !cache && !schema && !stream) return;
    const [bodySchema, paramsSchema] = schema ? nativeSchemas(schema) : ['', ''];
    if (cache !== undefined && (typeof cache !== 'object' || cache === null)) throw new TypeError('cache must be { ttl, vary }');
    if (rl !== undefined && (typeof rl !== 'object' || rl === null)) throw new TypeError('rateLimit must be { max, timeWindow }');
    native.routeRules(this._app, String(method).toUpperCase(), corePattern(path), rl ? u32(rl.max, 'rateLimit.max') : 0,
      rl ? u32(rl.timeWindow === undefined ? 60000 : rl.timeWindow, 'rateLimit.timeWindow') : 0,
      rl && rl.keyHeader ? String(rl.keyHeader) : '', Boolean(opts.apiKey), cache ? u32(cache.ttl, 'cache.ttl') : 0,
      cache && cache.vary ? [].concat(cache.vary).join(', ') : '', bodySchema, paramsSchema, stream,
      opts.maxBodyBytes === undefined ? 0 : u53(opts.maxBodyBytes, 'maxBodyBytes'));
  }

  /** CORS in the core (@fastify/cors names): { origin: string | string[] ('*' for any),
   * methods, allowedHeaders, exposedHeaders, credentials, maxAge (s) }. */
  cors(opts) {
    const list = (v, def) => (v === undefined ? def : Array.isArray(v) ? v.join(', ') : String(v));
    native.cors(this._app, list(opts && opts.origin, ''), list(opts.methods, ''), list(opts.allowedHeaders, ''),
      list(opts.exposedHeaders, ''), Boolean(opts.credentials), u32(opts.maxAge || 0, 'maxAge'));
    return this;
  }

  /** Keys accepted by routes declared with { apiKey: true }: header (default
   * X-API-Key) or the query parameter `query`; compared in constant time. */
  apiKeys(keys, opts = {}) {
    if (!Array.isArray(keys)) throw new TypeError('keys must be an array of strings');
    native.apiKeys(this._app, keys.map(String), opts.header ? String(opts.header) : '', opts.query ? String(opts.query) : '');
    return this;
  }

  /** App-wide rate limit for routes without their own: { max, timeWindow (ms), keyHeader }. */
  rateLimit(opts) {
    native.rateLimit(this._app, u32(opts.max, 'max'), u32(opts.timeWindow === undefined ? 60000 : opts.timeWindow, 'timeWindow'),
      opts.keyHeader ? String(opts.keyHeader) : '');
    return this;
  }

  /** Serves a folder under prefix ('/static/') natively (@fastify/static's root/prefix):
   * ETag/304, Range/206/416, content types, gzip, no path traversal.
   * opts: { maxAge (s), gzip = true, index = 'index.html' }. */
  staticDir(prefix, root, opts = {}) {
    native.staticDir(this._app, String(prefix), String(root), u32(opts.maxAge || 0, 'maxAge'), opts.gzip !== false,
      opts.index === undefined ? undefined : String(opts.index));
    return this;
  }

  /** gzip for handler answers of at least threshold bytes (@fastify/compress's name)
   * when the client accepts it. opts: { threshold = 1024, level = 6 }. */
  compression(opts = {}) {
    native.compression(this._app, true, u32(opts.threshold || 1024, 'threshold'), u32(opts.level || 6, 'level'));
    return this;
  }

  /** GET path answers Prometheus metrics natively. */
  metrics(path = '/metrics') {
    native.metrics(this._app, corePattern(path));
    return this;
  }

  /** One JSON line per answered request on stderr, written by the core. */
  accessLog(enabled = true) {
    native.accessLog(this._app, Boolean(enabled));
    return this;
  }

  /** Adds a route; the handler gets (req, reply) and may return a value or a Promise.
   * Optional native rules, as in Fastify: route(method, path, { rateLimit, apiKey }, handler). */
  route(method, path, opts, handler) {
    if (typeof method === 'object' && method !== null) {
      // Fastify style: app.route({ method, url, handler, rateLimit, apiKey })
      const o = method;
      const methods = Array.isArray(o.method) ? o.method : [o.method];
      for (const m of methods) this.route(m, o.url || o.path, o, o.handler);
      return this;
    }
    if (handler === undefined && typeof opts === 'function') {
      handler = opts;
      opts = undefined;
    }
    if (opts && opts.websocket === true && String(method).toUpperCase() === 'GET') {
      // @fastify/websocket's shape: app.get(path, { websocket: true }, (socket, req) => ...)
      const o = Object.assign({}, opts);
      delete o.websocket;
      return this.ws(path, o, handler);
    }
    if (typeof handler !== 'function') throw new TypeError('handler must be a function');
    if (this._server !== undefined) throw new Error('quicklane: routes must be added before listen()');
    const id = routes.length;
    routes.push(handler);
    routeTypes[id] = opts && opts.schema && typeof opts.schema === 'object' ? schemaTypes(opts.schema) : undefined;
    try {
      native.route(this._app, String(method).toUpperCase(), corePattern(path), id);
    } catch (e) {
      routes[id] = undefined;
      throw e;
    }
    if (opts) this._routeRules(method, path, opts);
    routeStreams[id] = Boolean(opts && opts.stream);
    return this;
  }
  get(path, opts, handler) { return this.route('GET', path, opts, handler); }
  post(path, opts, handler) { return this.route('POST', path, opts, handler); }
  put(path, opts, handler) { return this.route('PUT', path, opts, handler); }
  patch(path, opts, handler) { return this.route('PATCH', path, opts, handler); }
  delete(path, opts, handler) { return this.route('DELETE', path, opts, handler); }
  head(path, opts, handler) { return this.route('HEAD', path, opts, handler); }
  options(path, opts, handler) { return this.route('OPTIONS', path, opts, handler); }
  all(path, handler) {
    for (const m of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) this.route(m, path, handler);
    return this;
  }

  /**
   * A WebSocket route (GET path upgrades). Two shapes:
   *  - ws(path, { upgrade, open, message, drain, close, ping, pong, ...options }):
   *    uWebSockets.js / Bun, with ServerWebSocket objects;
   *  - ws(path, [options], (socket, req) => ...): the `ws` library's sockets
   *    (EventEmitter: 'message', 'close', send(data, cb), ...).
   * options: maxPayloadLength, maxBackpressure, closeOnBackpressureLimit,
   * idleTimeout (s), sendPingsAutomatically, pingInterval (ms), compression.
   */
  ws(path, behavior, handler) {
    if (this._server !== undefined) throw new Error('quicklane: routes must be added before listen()');
    if (typeof behavior === 'function' && handler === undefined) {
      wsLib.addRoute(this, path, wsLib.wsShaped(undefined, behavior), 'ws');
    } else if (handler !== undefined) {
      if (behavior !== undefined && (behavior === null || typeof behavior !== 'object')) {
        throw new TypeError('quicklane: app.ws(path, options, handler): options must be an object');
      }
      wsLib.addRoute(this, path, wsLib.wsShaped(behavior, handler), 'ws');
    } else {
      wsLib.addRoute(this, path, behavior, 'uws');
    }
    return this;
  }

  /**
   * Sends a message to every WebSocket subscribed to `topic` (strings as text,
   * binary data as binary; isBinary overrides). Returns how many subscribers it
   * was sent to (0 when the app is not listening).
   */
  publish(topic, message, isBinary) {
    return wsLib.publishOn(this, topic, message, isBinary, -1);
  }

  /**
   * Starts serving on Node's event loop. Resolves with the address
   * ("http://127.0.0.1:8080"); `app.port` is the bound port (useful with port 0).
   * opts: { host = '127.0.0.1', port = 0, reusePort, maxBodyBytes, ... }.
   */
  listen(opts, cb) {
    if (typeof opts === 'number') opts = { port: opts };
    opts = Object.assign({}, this._options, opts || {});
    const p = new Promise((resolve) => {
      if (this._server !== undefined) throw new Error('quicklane: already listening; close() first');
      const host = opts.host || '127.0.0.1';
      const port = opts.port === undefined ? 0 : Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('port must be 0..65535');
      if (opts.maxStreamBodyBytes !== undefined) u53(opts.maxStreamBodyBytes, 'maxStreamBodyBytes');
      if (opts.bodyWindowBytes !== undefined) u32(opts.bodyWindowBytes, 'bodyWindowBytes');
      this._server = native.listen(this._app, host, port, opts);
      listening.add(this);
      this._port = native.port(this._server);
      this._host = host;
      resolve(this.url);
    });
    if (typeof cb === 'function') p.then((a) => cb(null, a), (e) => cb(e));
    return p;
  }

  /** The bound port (0 when not listening). */
  get port() { return this._server !== undefined ? this._port : 0; }
  get url() {
    if (this._server === undefined) return undefined;
    const h = this._host.includes(':') ? `[${this._host}]` : this._host;
    return `http://${h}:${this._port}`;
  }
  address() {
    if (this._server === undefined) return null;
    return { address: this._host, family: this._host.includes(':') ? 'IPv6' : 'IPv4', port: this._port };
  }
  get listening() { return this._server !== undefined && this._closing === undefined; }
  /** Counters from the core: connectionsOpen, connectionsTotal, requestsTotal, requestsInFlight. */
  stats() { return this._server !== undefined ? native.stats(this._server) : null; }

  /**
   * Graceful stop: stops accepting, closes idle keep-alive connections, lets
   * in-flight requests finish for up to `timeoutMs` (default 5000), then
   * closes the rest. Resolves once every connection and handle is closed.
   */
  close(timeoutMs) {
    if (this._closing !== undefined) return this._closing;
    if (this._server === undefined) return Promise.resolve();
    const server = this._server;
    const timeout = timeoutMs === undefined ? 5000 : Math.max(0, Math.min(0xffffffff, timeoutMs | 0));
    this._closing = new Promise((resolve, reject) => {
      const finish = () => {
        markGone(native.free(server));
        wsLib.serverGone(this);
        listening.delete(this);
        this._server = undefined;
        this._closing = undefined;
        resolve();
      };
      try {
        // The callback runs inside the core's close callback: free from a later turn.
        if (!native.close(server, timeout, () => setImmediate(finish))) setImmediate(finish);
      } catch (e) {
        reject(e);
      }
    });
    this._closing.catch(() => { this._closing = undefined; });
    return this._closing;
  }
}

function app(options) {
  return new App(options);
}

wsLib.setup({ Request, corePattern, live, app });

module.exports = {
  app,
  App,
  Request,
  StreamRequest,
  Reply,
  ReplyStream,
  EventStream,
  sse,
  version: native.version,
  abiVersion: native.abiVersion,
  features: { reusePort: native.reusePort },
  ServerWebSocket: wsLib.ServerWebSocket,
  UpgradeContext: wsLib.UpgradeContext,
  UpgradeRequest: wsLib.UpgradeRequest,
  WebSocket: wsLib.WebSocket,
  WebSocketServer: wsLib.WebSocketServer,
  DISABLED: wsLib.DISABLED,
  SHARED_COMPRESSOR: wsLib.SHARED_COMPRESSOR,
  DEDICATED_COMPRESSOR: wsLib.DEDICATED_COMPRESSOR,
  // Test hooks: handles held for JS ({ webSockets, requests, sockets, pendingAccepts }).
  _liveHandles: wsLib.liveHandles,
};
module.exports.default = module.exports;
