'use strict';
// WebSockets for Node over the core's (ql_app_ws): the callbacks run on Node's
// own loop, so JS is called directly from the core's frame reader. Two
// shapes:
//  - app.ws(path, { upgrade, open, message, drain, close, ping, pong, ...limits })
//    in the shape of uWebSockets.js and Bun, with ServerWebSocket objects;
//  - app.ws(path, (socket, req) => ...) and WebSocketServer: EventEmitter
//    sockets in the shape of the `ws` library (and @fastify/websocket),
//    built in JS on the first.
// A socket is named natively by a small integer (its entry in the addon),
// valid from open to close; after close every call is a harmless no-op.

const { EventEmitter } = require('node:events');
const { STATUS_CODES } = require('node:http');
const crypto = require('node:crypto');
const native = require('./native');

const QL_OK = 0;
const QL_E_GONE = -6;
// ql_ws_send's kinds.
const WS_TEXT = 0;
const WS_BINARY = 1;
const WS_PING = 2;
const WS_PONG = 3;

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

const CONNECTING = 0;
const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

const DISABLED = 0;
const SHARED_COMPRESSOR = 1;
const DEDICATED_COMPRESSOR = 2;

// Set by index.js (no circular require).
let deps;
function setup(d) {
  deps = d;
}

const wsRoutes = [];  // by route id: the normalized behaviour
const sockets = [];   // by native entry: the ServerWebSocket
let openCount = 0;

// Data given with an accept waits here for on_open, under a token kept as the
// socket's tag. An accepted upgrade whose connection ends before the 101 is
// out opens nothing: the core says so (on_upgrade_gone with the token), and
// the entry goes at once.
const pending = new Map();
let nextToken = 1;
function keepPending(data) {
  let token = nextToken;
  while (pending.has(token)) token = token >= 0x7fffffff ? 1 : token + 1;
  nextToken = token >= 0x7fffffff ? 1 : token + 1;
  pending.set(token, data);
  return token;
}

function describe(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object (${(v.constructor && v.constructor.name) || 'Object'})`;
  return typeof v;
}

function isMessage(v) {
  return typeof v === 'string' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

function checkMessage(v, what) {
  if (!isMessage(v)) {
    throw new TypeError(`quicklane: ${what} must be a string, a Buffer, a TypedArray, a DataView or an ArrayBuffer, ` +
      `not ${describe(v)}`);
  }
}

function checkTopic(topic) {
  if (typeof topic !== 'string') throw new TypeError(`quicklane: a topic must be a string, not ${describe(topic)}`);
}

function byteLength(v) {
  return typeof v === 'string' ? Buffer.byteLength(v) : v.byteLength;
}

// ---- route options (uWebSockets.js, Bun and ws names) -------------------------

function optBytes(v, name) {
  if (v === undefined) return 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`quicklane: ${name} must be a non-negative integer (bytes)`);
  return v;
}

function compressionMode(o) {
  let v = o.compression !== undefined ? o.compression : o.perMessageDeflate;
  if (v === undefined || v === false || v === null || v === 'none' || v === 'disabled') return DISABLED;
  if (v === true || v === 'shared' || (typeof v === 'object' && !Array.isArray(v))) v = SHARED_COMPRESSOR;
  if (v === 'dedicated') v = DEDICATED_COMPRESSOR;
  if (v !== DISABLED && v !== SHARED_COMPRESSOR && v !== DEDICATED_COMPRESSOR) {
    throw new RangeError("quicklane: compression must be false, true, 'shared', 'dedicated' (or 0, 1, 2: " +
      'DISABLED, SHARED_COMPRESSOR, DEDICATED_COMPRESSOR)');
  }
  return v;
}

// The core's ql_ws_behavior limits from the user's options.
function nativeOptions(o, shape) {
  const n = {};
  const maxPayload = o.maxPayloadLength !== undefined ? o.maxPayloadLength : o.maxPayload;
  n.maxMessageBytes = optBytes(maxPayload, 'maxPayloadLength');
  if (maxPayload === 0) throw new RangeError('quicklane: maxPayloadLength must be at least 1 byte');
  const bp = o.maxBackpressure !== undefined ? o.maxBackpressure : o.backpressureLimit;
  // The ws-shaped API never drops a message silently: a client that stays 16 MiB
  // behind is closed (1008) instead, as a send over the limit would leave a gap.
  n.maxBackpressure = optBytes(bp === undefined && shape === 'ws' ? 16 * 1024 * 1024 : bp, 'maxBackpressure');
  if (bp === 0) throw new RangeError('quicklane: maxBackpressure must be at least 1 byte');
  let closeOnLimit = o.closeOnBackpressureLimit;
  if (closeOnLimit === undefined) closeOnLimit = shape === 'ws';
  n.closeOnBackpressure = Boolean(closeOnLimit);
  // idleTimeout: seconds, as uWebSockets.js and Bun (0 = never).
  let idleMs = 0;
  if (o.idleTimeout !== undefined) {
    const s = o.idleTimeout;
    if (typeof s !== 'number' || !(s === 0 || (s >= 1 && s <= 4294967))) {
      throw new RangeError('quicklane: idleTimeout is in seconds: 0 (never) or 1 .. 4294967');
    }
    idleMs = s === 0 ? 0xffffffff : Math.round(s * 1000);
  }
  n.idleTimeoutMs = idleMs;
  // Pings to a silent client: every pingInterval ms, or (sendPingsAutomatically /
  // sendPings, default true as in uWebSockets.js and Bun) at half the idle timeout.
  if (o.pingInterval !== undefined) {
    const p = o.pingInterval;
    if (typeof p !== 'number' || !(p === 0 || (p >= 1000 && p <= 0xffffffff))) {
      throw new RangeError('quicklane: pingInterval is in ms: 0 (none) or 1000 .. 4294967295');
    }
    n.pingIntervalMs = Math.round(p);
  } else {
    const auto = o.sendPingsAutomatically !== undefined ? o.sendPingsAutomatically : o.sendPings;
    const idle = idleMs || 120000;
    n.pingIntervalMs = auto === false || idle === 0xffffffff ? 0 : Math.max(1000, Math.floor(idle / 2));
  }
  n.compression = compressionMode(o);
  if (o.compressionWindowBits !== undefined) {
    const b = o.compressionWindowBits;
    if (!Number.isInteger(b) || b < 9 || b > 15) throw new RangeError('quicklane: compressionWindowBits must be 9..15');
    n.compressionWindowBits = b;
  }
  return n;
}

const BEHAVIOR_CALLBACKS = ['upgrade', 'open', 'message', 'drain', 'close', 'ping', 'pong'];

// ---- the uWebSockets.js / Bun shape -----------------------------------------------

/**
 * A server-side WebSocket (app.ws(path, behavior)). Valid from `open` to
 * `close`; afterwards its calls do nothing and report so (send → 0).
 */
class ServerWebSocket {
  constructor(route, slot, protocol) {
    this._route = route;
    this._slot = slot;
    this._state = OPEN;
    this._topics = undefined;
    this._ip = '';
    this._protocol = protocol;
    /** User data: what upgrade's ctx.accept({ data }) gave (undefined otherwise). */
    this.data = undefined;
  }

  /** 1 open, 2 closing (end() called, or the client's close is being answered), 3 closed. */
  get readyState() { return this._state; }
  /** True once the socket has closed (the `close` callback has run). */
  get isClosed() { return this._state === CLOSED; }

  /**
   * Sends one message: strings as text, binary data (Buffer, TypedArray, DataView,
   * ArrayBuffer) as binary; isBinary overrides. Returns, as Bun does: the message's
   * size in bytes (at least 1) when it was sent; -1 when it was queued above the
   * backpressure mark (half of maxBackpressure; `drain` follows); 0 when it was
   * not sent: dropped over maxBackpressure, or the socket is closing or closed.
   */
  send(message, isBinary, compress) {
    void compress;  // the route's compression decides
    const binary = isBinary === undefined ? typeof message !== 'string' : Boolean(isBinary);
    if (this._state !== OPEN) {
      checkMessage(message, 'a WebSocket message');
      return 0;
    }
    const r = native.wsSend(this._slot, message, binary ? WS_BINARY : WS_TEXT);  // bytes sent, -1 queued, -2 dropped, -6 gone
    if (r >= 0) return r || 1;
    if (r === -1) return -1;
    if (r === QL_E_GONE) this._closing();
    return 0;
  }
  sendText(text, compress) {
    if (typeof text !== 'string') throw new TypeError('quicklane: sendText takes a string');
    return this.send(text, false, compress);
  }
  sendBinary(data, compress) {
    return this.send(typeof data === 'string' ? Buffer.from(data) : data, true, compress);
  }

  /** To every subscriber of `topic` but this socket; returns how many it was sent to. */
  publish(topic, message, isBinary, compress) {
    void compress;
    return publishOn(this._route.app, topic, message, isBinary, this._state === OPEN ? this._slot : -1);
  }
  publishText(topic, text) { return this.publish(topic, String(text), false); }
  publishBinary(topic, data) { return this.publish(topic, data, true); }

  /** Subscribes to a topic (exact string, across the whole server). False once closed. */
  subscribe(topic) {
    checkTopic(topic);
    if (this._state !== OPEN || native.wsSubscribe(this._slot, topic, true) !== QL_OK) return false;
    if (this._topics === undefined) this._topics = new Set();
    this._topics.add(topic);
    return true;
  }
  unsubscribe(topic) {
    checkTopic(topic);
    if (this._topics === undefined || !this._topics.has(topic)) return false;
    this._topics.delete(topic);
    return this._state === OPEN && native.wsSubscribe(this._slot, topic, false) === QL_OK;
  }
  isSubscribed(topic) { return this._topics !== undefined && this._topics.has(topic); }
  /** The topics this socket is subscribed to. */
  getTopics() { return this._topics === undefined ? [] : [...this._topics]; }
  get subscriptions() { return this.getTopics(); }

  /** Bytes sent and not yet taken by the kernel (0 once closed). */
  getBufferedAmount() {
    if (this._state === CLOSED) return 0;
    const n = native.wsBuffered(this._slot);
    return n < 0 ? 0 : n;
  }

  /**
   * The close handshake with `code` (1000, 1001, 1003, 1007-1014, 3000-4999;
   * default 1000) and a reason of at most 123 UTF-8 bytes; `close` follows once
   * the client answered (or 2 s later). False when already closing or closed.
   */
  end(code = 1000, reason) {
    if (!Number.isInteger(code) || code < 1 || code > 65535) {
      throw new RangeError('quicklane: a close code is an integer: 1000, 1001, 1003, 1007-1014 or 3000-4999');
    }
    if (reason !== undefined && reason !== null && typeof reason !== 'string' && !ArrayBuffer.isView(reason)) {
      throw new TypeError('quicklane: a close reason is a string or a Buffer');
    }
    if (this._state !== OPEN) return false;
    const st = native.wsClose(this._slot, code, reason === null ? undefined : reason);  // RangeError for a bad code
    this._closing();
    return st === QL_OK;
  }
  /**
   * Without arguments: cuts the connection at once (uWebSockets.js's close();
   * `close` gets 1006). With a code: the close handshake, as end(code, reason)
   * (Bun's close(code, reason)).
   */
  close(code, reason) {
    if (code !== undefined) return this.end(code, reason);
    this.terminate();
    return undefined;
  }
  /** Cuts the connection at once (`close` follows with 1006). */
  terminate() {
    if (this._state === CLOSED) return;
    native.wsClose(this._slot, 0, undefined);
    this._closing();
  }
  /** Runs fn at once: sends made on the loop are written together at the end of
   * the loop's iteration anyway (uWebSockets.js compatibility). */
  cork(fn) {
    fn();
    return this;
  }
  /** The client's address ("127.0.0.1", "::1"). */
  getRemoteAddress() { return this._ip; }
  getRemoteAddressAsText() { return this._ip; }
  get remoteAddress() { return this._ip; }
  /** The subprotocol chosen at the upgrade ('' when none). */
  get protocol() { return this._protocol; }
  getProtocol() { return this._protocol; }
  /**
   * Sends a ping: a control frame with `data` (a string's UTF-8 or binary data,
   * at most 125 bytes: a RangeError otherwise; none by default), in order with
   * the messages, never dropped; the client answers with a pong (the route's
   * `pong` callback). Returns as send: its size in bytes (at least 1), -1 when
   * queued above the backpressure mark, 0 when the socket is closing or closed.
   * (The core also answers the client's pings and pings a silent client itself.)
   */
  ping(data) { return this._control(data, false); }
  /** Sends an unsolicited pong (a heartbeat the client does not answer); as ping. */
  pong(data) { return this._control(data, true); }

  _control(data, pong) {
    if (data === null) data = undefined;
    if (typeof data === 'number') data = String(data);
    if (data !== undefined) {
      checkMessage(data, `a ${pong ? 'pong' : 'ping'} payload`);
      if (byteLength(data) > 125) throw new RangeError('The data size must not be greater than 125 bytes');
    }
    if (this._state !== OPEN) return 0;
    const r = native.wsSend(this._slot, data, pong ? WS_PONG : WS_PING);  // bytes sent, -1 queued, -6 gone
    if (r >= 0) return r || 1;
    if (r === -1) return -1;
    if (r === QL_E_GONE) this._closing();
    return 0;
  }

  _closing() {
    if (this._state === OPEN) this._state = CLOSING;
  }
}

function publishOn(app, topic, message, isBinary, excludeSlot) {
  checkTopic(topic);
  checkMessage(message, 'a published message');
  const server = app === undefined ? undefined : app._server;
  if (server === undefined) return 0;
  const binary = isBinary === undefined ? typeof message !== 'string' : Boolean(isBinary);
  return native.publish(server, topic, message, binary, excludeSlot);
}

// ---- the upgrade --------------------------------------------------------------

function headerPairs(h) {
  if (h === undefined || h === null) return undefined;
  if (typeof h !== 'object') throw new TypeError('quicklane: headers must be an object or an array of [name, value]');
  const out = [];
  if (Array.isArray(h)) {
    for (const pair of h) {
      if (typeof pair === 'string') {  // ws's 'headers' event: "Name: value" lines
        const i = pair.indexOf(':');
        if (i > 0) out.push(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
      } else {
        out.push(String(pair[0]), String(pair[1]));
      }
    }
    return out;
  }
  for (const k of Object.keys(h)) {
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.push(k, String(x));
    else if (v !== undefined) out.push(k, String(v));
  }
  return out;
}

function offeredProtocols(req) {
  const h = req.header('sec-websocket-protocol');
  if (!h) return [];
  return h.split(',').map((s) => s.trim()).filter(Boolean);
}

/**
 * What an upgrade handler decides with: accept (with user data, a subprotocol
 * and extra 101 headers) or refuse (any status and body), now or later.
 */
class UpgradeContext {
  constructor(route, req) {
    this._route = route;
    this._req = req;
    this._decided = false;
    this._protocols = undefined;
  }
  /** The subprotocols the client offered (Sec-WebSocket-Protocol), in order. */
  get protocols() {
    if (this._protocols === undefined) this._protocols = this._req._done ? [] : offeredProtocols(this._req);
    return this._protocols;
  }
  /** True once accept() or refuse() was called (or the client is gone). */
  get decided() { return this._decided || this._req._done; }

  /**
   * Accepts: the 101 goes out and `open` follows. opts: { data (ws.data),
   * protocol (one the client offered), headers }. Returns false when the
   * client has gone (nothing opens). Throws TypeError for a protocol the
   * client did not offer or a reserved header (the request stays unanswered).
   */
  accept(opts) {
    if (this._decided) throw new Error('quicklane: this upgrade was already accepted or refused');
    const o = opts === undefined || opts === null ? {} : opts;
    if (typeof o !== 'object') throw new TypeError('quicklane: accept(opts): opts is { data, protocol, headers }');
    const protocol = o.protocol === undefined || o.protocol === null || o.protocol === false ? undefined : o.protocol;
    if (protocol !== undefined && typeof protocol !== 'string') throw new TypeError('quicklane: protocol must be a string');
    const headers = headerPairs(o.headers);
    const req = this._req;
    if (req._done) {
      this._decided = true;
      return false;
    }
    const token = o.data === undefined ? 0 : keepPending(o.data);
    let st;
    try {
      st = native.wsAccept(req._slot, protocol, headers, token);  // open may run inside
    } catch (e) {
      if (token) pending.delete(token);
      throw e;
    }
    this._decided = true;
    this._finish();
    if (st !== QL_OK && token) pending.delete(token);
    return st === QL_OK;
  }

  /**
   * Refuses with an HTTP answer: status (default 403); body: object → JSON,
   * string → text, Buffer → bytes, undefined → {"detail": <reason phrase>}.
   * opts: { headers, contentType }. False when the client has gone.
   */
  refuse(status = 403, body, opts) {
    if (this._decided) throw new Error('quicklane: this upgrade was already accepted or refused');
    if (!Number.isInteger(status) || status < 200 || status > 599 || status === 101) {
      throw new RangeError('quicklane: a refusal status is an integer from 200 to 599');
    }
    const o = opts || {};
    let type = o.contentType;
    let payload;
    if (body === undefined) {
      payload = JSON.stringify({ detail: STATUS_CODES[status] || 'refused' });
      type = type || 'application/json';
    } else if (typeof body === 'string') {
      payload = body;
      type = type || 'text/plain; charset=utf-8';
    } else if (body instanceof Uint8Array || body instanceof ArrayBuffer) {
      payload = body;
      type = type || 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      type = type || 'application/json';
    }
    const headers = headerPairs(o.headers);
    const req = this._req;
    if (req._done) {
      this._decided = true;
      return false;
    }
    const st = native.respond(req._slot, status, type, headers, payload);  // throws for bad fields
    this._decided = true;
    this._finish();
    return st === QL_OK;
  }

  _finish() {
    const req = this._req;
    req._done = true;
    if (deps.live[req._slot] === req) deps.live[req._slot] = undefined;
  }

  // What the handler returned (or its promise resolved to).
  _settle(v) {
    if (this.decided) return;
    if (v === this) return;  // `return ctx`: decided later
    try {
      if (v === undefined || v === true) this.accept();
      else if (v === false) this.refuse(403);
      else if (typeof v === 'object' && v !== null) this.accept(v);
      else throw new TypeError(`upgrade returned ${describe(v)}; return nothing/true (accept), false (403), ` +
        '{ data, protocol, headers } (accept with them), or ctx (decide later with ctx.accept / ctx.refuse)');
    } catch (e) {
      this._fail(e);
    }
  }

  // The handler threw (or its promise rejected): err.statusCode 400..599 is the
  // answer with its message; anything else is a 500, logged.
  _fail(err) {
    if (this.decided) {
      console.error(`quicklane: exception in the WebSocket upgrade handler of ${this._route.path} ` +
        '(after it decided):', err);
      return;
    }
    let status = err && (err.statusCode || err.status);
    status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
    let detail;
    if (status >= 500) {
      detail = 'Internal Server Error';
      console.error(`quicklane: exception in the WebSocket upgrade handler of ${this._route.path}:`, err);
    } else {
      detail = err && err.message ? String(err.message) : 'refused';
    }
    try {
      this.refuse(status, { detail });
    } catch (e) {
      this.refuse(500, { detail: 'Internal Server Error' });
    }
  }
}

function onUpgrade(routeId, slot) {
  const route = wsRoutes[routeId];
  const req = new deps.Request(slot, undefined);
  deps.live[slot] = req;
  const ctx = new UpgradeContext(route, req);
  let result;
  try {
    result = route.upgrade(req, ctx);
  } catch (err) {
    ctx._fail(err);
    return;
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    result.then((v) => ctx._settle(v), (err) => ctx._fail(err));
  } else {
    ctx._settle(result);
  }
}

// ---- events from the core -------------------------------------------------------

// A callback threw (or its promise rejected): logged, and the socket closes 1011.
function handlerError(ws, what, err) {
  console.error(`quicklane: exception in the WebSocket ${what} handler of ${ws._route.path}; closing it (1011):`, err);
  if (ws._state === OPEN) {
    try {
      ws.end(1011, 'internal error');
    } catch (e) { /* closing already */ }
  }
}

function run(ws, what, fn, a, b) {
  try {
    const r = fn(ws, a, b);
    if (r !== undefined && r !== null && typeof r.then === 'function') r.then(undefined, (e) => handlerError(ws, what, e));
  } catch (e) {
    handlerError(ws, what, e);
  }
}

function onOpen(routeId, slot, reqSlot, token, protocol) {
  const route = wsRoutes[routeId];
  const ws = new ServerWebSocket(route, slot, protocol);
  sockets[slot] = ws;
  openCount++;
  if (token) {
    if (pending.has(token)) {
      ws.data = pending.get(token);
      pending.delete(token);
    }
  }
  ws._ip = native.ip(reqSlot);
  if (route.open === undefined) return;
  // The upgrade request: readable during open only (its slot is freed after).
  const req = new deps.Request(reqSlot, undefined);
  try {
    run(ws, 'open', route.open, req);
  } finally {
    req._done = true;
  }
}

function onMessage(slot, message, isBinary) {
  const ws = sockets[slot];
  if (ws === undefined) return;
  const fn = ws._route.message;
  if (fn !== undefined) run(ws, 'message', fn, message, isBinary);
}

function onDrain(slot) {
  const ws = sockets[slot];
  if (ws === undefined) return;
  const fn = ws._route.drain;
  if (fn !== undefined) run(ws, 'drain', fn);
}

function onPing(slot, data) {
  const ws = sockets[slot];
  if (ws !== undefined && ws._route.ping !== undefined) run(ws, 'ping', ws._route.ping, data);
}

function onPong(slot, data) {
  const ws = sockets[slot];
  if (ws !== undefined && ws._route.pong !== undefined) run(ws, 'pong', ws._route.pong, data);
}

function closed(ws, code, reason) {
  ws._state = CLOSED;
  ws._topics = undefined;
  openCount--;
  const fn = ws._route.close;
  if (fn === undefined) return;
  try {
    const r = fn(ws, code, reason);
    if (r !== undefined && r !== null && typeof r.then === 'function') {
      r.then(undefined, (e) => console.error(`quicklane: exception in the WebSocket close handler of ${ws._route.path}:`, e));
    }
  } catch (e) {
    console.error(`quicklane: exception in the WebSocket close handler of ${ws._route.path}:`, e);
  }
}

function onClose(slot, code, reason) {
  const ws = sockets[slot];
  if (ws === undefined) return;
  sockets[slot] = undefined;
  closed(ws, code, reason);
}

// What an upgrade handler may still read of a request whose client left (each
// getter caches its value; header(name) reads the cached headers).
const KEPT_ON_GONE = ['method', 'url', 'path', 'params', 'query', 'headers', 'ip'];

// An upgrade that will never open (on_upgrade_gone): gone(slot, -1) for one
// JS had not decided (its client left: the request is marked aborted, its
// signal fires, ctx.decided turns true and a late accept/refuse returns
// false; the addon frees it once this returns), gone(-1, token) for an
// accepted one whose connection ended before the 101 (its data is dropped).
function onUpgradeGone(slot, token) {
  if (slot < 0) {
    pending.delete(token);
    return;
  }
  const req = deps.live[slot];
  if (req === undefined) return;
  for (const name of KEPT_ON_GONE) {
    try { void req[name]; } catch (e) { /* nothing to keep */ }
  }
  deps.live[slot] = undefined;
  req._done = true;
  req._aborted = true;
  if (req._ac !== undefined) req._ac.abort();
}

native.wsInit(onUpgrade, onOpen, onMessage, onDrain, onClose, onPing, onPong, onUpgradeGone);

// The app's server was freed: sockets JS still thinks open (none, when the
// core told every close) are closed with 1006.
function serverGone(app) {
  for (let i = 0; i < sockets.length; i++) {
    const ws = sockets[i];
    if (ws !== undefined && ws._route.app === app) {
      sockets[i] = undefined;
      closed(ws, 1006, ws._route.textAsBuffer ? Buffer.alloc(0) : '');
    }
  }
}

function addRoute(app, path, behavior, shape) {
  if (behavior === null || typeof behavior !== 'object') {
    throw new TypeError('quicklane: app.ws(path, behavior): behavior is { open, message, drain, close, upgrade, ... } ' +
      '(or a (socket, req) => ... handler for the ws-shaped API)');
  }
  for (const name of BEHAVIOR_CALLBACKS) {
    if (behavior[name] !== undefined && typeof behavior[name] !== 'function') {
      throw new TypeError(`quicklane: the WebSocket ${name} handler must be a function`);
    }
  }
  const pattern = deps.corePattern(path);
  const opts = nativeOptions(behavior, shape);
  const id = wsRoutes.length;
  const route = {
    app,
    path,
    upgrade: behavior.upgrade,
    open: behavior.open,
    message: behavior.message,
    drain: behavior.drain,
    close: behavior.close,
    ping: behavior.ping,
    pong: behavior.pong,
    textAsBuffer: shape === 'ws',
  };
  wsRoutes.push(route);
  opts.textAsBuffer = route.textAsBuffer;
  opts.upgrade = route.upgrade !== undefined;
  opts.ping = route.ping !== undefined;
  opts.pong = route.pong !== undefined;
  try {
    native.wsRoute(app._app, pattern, id, opts);
  } catch (e) {
    wsRoutes[id] = undefined;
    throw e;
  }
  return route;
}

// ---- the `ws` library's shape ------------------------------------------------------

const kEmpty = Buffer.alloc(0);

function validCloseCode(code) {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code <= 4999);
}

/**
 * The upgrade request as the ws-shaped handler keeps it (a copy: readable for
 * the socket's whole life): url, headers, params, query, ip, and socket.remoteAddress
 * as node:http's IncomingMessage has it.
 */
class UpgradeRequest {
  constructor(req) {
    this.method = 'GET';
    this.url = req.url;
    this.path = req.path;
    this.headers = req.headers;
    this.params = req.params;
    this.query = req.query;
    this.ip = req.ip;
    this.socket = { remoteAddress: this.ip };
    this.connection = this.socket;
    this.httpVersion = '1.1';
  }
}

function dropped() {
  return toError('quicklane: the message was not sent: more than maxBackpressure bytes wait for this client ' +
    '(or the socket is closing)', 'QL_WS_DROPPED');
}

function notOpen(state) {
  return toError(`WebSocket is not open: readyState ${state} (${state === CLOSING ? 'CLOSING' : 'CLOSED'})`);
}

function toError(message, code) {
  const e = new Error(message);
  if (code) e.code = code;
  return e;
}

/**
 * A server-side socket with the `ws` library's API: an EventEmitter with
 * 'message' (data: Buffer, isBinary), 'close' (code, reason: Buffer), 'error',
 * 'ping', 'pong'; send(data, [options], [cb]), close(code, reason),
 * terminate(), readyState, bufferedAmount, protocol. Built on ServerWebSocket.
 */
class WebSocket extends EventEmitter {
  constructor(ws, req) {
    super();
    this._ws = ws;
    this._req = req;
    this._binaryType = 'nodebuffer';
    this._paused = undefined;  // messages held while paused
    this._held = undefined;    // send callbacks waiting for a drain
    this._closeCode = undefined;
  }
  get readyState() { return this._ws._state; }
  /** Bytes sent and not yet taken by the kernel. */
  get bufferedAmount() { return this._ws.getBufferedAmount(); }
  get protocol() { return this._ws._protocol; }
  get extensions() { return ''; }
  get url() { return this._req ? this._req.url : undefined; }
  /** The quicklane ServerWebSocket underneath (subscribe, publish, ...). */
  get raw() { return this._ws; }
  get binaryType() { return this._binaryType; }
  set binaryType(t) {
    if (t !== 'nodebuffer' && t !== 'arraybuffer' && t !== 'fragments') {
      throw new TypeError("quicklane: binaryType is 'nodebuffer', 'arraybuffer' or 'fragments'");
    }
    this._binaryType = t;
  }
  get isPaused() { return this._paused !== undefined; }

  /**
   * Sends data (string → text; Buffer, TypedArray, ArrayBuffer → binary; a
   * number as its text). options: { binary, compress, fin, mask }. cb(err) runs
   * once the message is handed to the kernel's buffers (when the core holds more
   * than half of maxBackpressure for this client: at the next drain), or with an
   * Error when the socket is not open or the message could not be sent.
   */
  send(data, options, cb) {
    if (typeof options === 'function') {
      cb = options;
      options = {};
    }
    if (typeof data === 'number') data = String(data);
    checkMessage(data, 'data');
    const binary = options && options.binary !== undefined ? Boolean(options.binary) : typeof data !== 'string';
    const state = this._ws._state;
    if (state !== OPEN) {
      if (state === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
      if (typeof cb === 'function') process.nextTick(cb, notOpen(state));
      return;
    }
    const r = this._ws.send(data, binary);
    if (typeof cb !== 'function') {
      // Dropped without a callback to tell (closeOnBackpressureLimit: false): 'error'
      // when someone listens, else a warning once. A socket found closing is silent, as in ws.
      if (r === 0 && this._ws._state === OPEN) {
        if (this.listenerCount('error') > 0) {
          process.nextTick(() => this.emit('error', dropped()));
        } else if (!this._warnedDrop) {
          this._warnedDrop = true;
          process.emitWarning('quicklane: a WebSocket message was not sent: more than maxBackpressure bytes wait for ' +
            'this client, or it is closing', { code: 'QUICKLANE' });
        }
      }
      return;
    }
    if (r > 0) process.nextTick(cb);
    else if (r === -1) (this._held || (this._held = [])).push(cb);
    else process.nextTick(cb, dropped());
  }

  /** The close handshake (ws's close(code, reason)); 'close' follows. */
  close(code, data) {
    const state = this._ws._state;
    if (state === CLOSED || state === CLOSING) return;
    if (code === undefined) code = 1000;
    else if (typeof code !== 'number' || !validCloseCode(code)) {
      throw new TypeError('First argument must be a valid error code number');
    }
    if (data !== undefined && byteLength(typeof data === 'string' ? data : Buffer.from(data)) > 123) {
      throw new RangeError('The message must not be greater than 123 bytes');
    }
    this._ws.end(code, data === undefined ? undefined : typeof data === 'string' ? data : Buffer.from(data));
  }
  /** Cuts the connection ('close' follows with 1006). */
  terminate() {
    this._ws.terminate();
  }
  /**
   * Sends a ping (ws's ping([data], [mask], [cb])): data of at most 125 bytes
   * (RangeError beyond), a number as its text; the client's pong comes as a
   * 'pong' event. cb(err) as for send. `mask` is ignored (a server never masks).
   */
  ping(data, mask, cb) { this._control(data, mask, cb, false); }
  /** Sends an unsolicited pong (ws's pong([data], [mask], [cb])); as ping. */
  pong(data, mask, cb) { this._control(data, mask, cb, true); }

  _control(data, mask, cb, pong) {
    const state = this._ws._state;
    if (state === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    if (typeof data === 'function') {
      cb = data;
      data = undefined;
    } else if (typeof mask === 'function') {
      cb = mask;
    }
    if (typeof data === 'number') data = data.toString();
    if (state !== OPEN) {
      if (typeof cb === 'function') process.nextTick(cb, notOpen(state));
      return;
    }
    const r = this._ws._control(data, pong);  // RangeError over 125 bytes
    if (typeof cb !== 'function') return;
    if (r > 0) process.nextTick(cb);
    else if (r === -1) (this._held || (this._held = [])).push(cb);
    else process.nextTick(cb, notOpen(this._ws._state === OPEN ? CLOSING : this._ws._state));
  }
  /** Holds 'message' events until resume() (the core keeps reading). */
  pause() {
    if (this._paused === undefined && this._ws._state !== CLOSED) this._paused = [];
  }
  resume() {
    const held = this._paused;
    if (held === undefined) return;
    this._paused = undefined;
    for (const [data, isBinary] of held) {
      if (this._paused !== undefined) {
        this._paused.push([data, isBinary]);
      } else {
        this.emit('message', data, isBinary);
      }
    }
  }

  _message(data, isBinary) {
    if (this._binaryType === 'arraybuffer') data = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
    else if (this._binaryType === 'fragments') data = [data];
    if (this._paused !== undefined) this._paused.push([data, isBinary]);
    else this.emit('message', data, isBinary);
  }
  _drain() {
    const held = this._held;
    if (held === undefined) return;
    this._held = undefined;
    for (const cb of held) cb();
  }
  _closed(code, reason) {
    const held = this._held;
    this._held = undefined;
    if (held !== undefined) {
      const err = code === 1006 ? toError('quicklane: the connection ended before the message was sent') : undefined;
      for (const cb of held) cb(err);
    }
    if (this._paused !== undefined) this.resume();
    this.emit('close', code, reason);
  }

  // WHATWG-style listeners, as ws offers them (onmessage, addEventListener).
  addEventListener(type, listener, options) {
    if (typeof listener !== 'function') return;
    const wrap = wrapEvent(this, type, listener);
    if (wrap === undefined) return;
    wrap._listener = listener;
    if (options && options.once) this.once(type, wrap);
    else this.on(type, wrap);
  }
  removeEventListener(type, listener) {
    for (const l of this.listeners(type)) {
      if (l._listener === listener) {
        this.off(type, l);
        return;
      }
    }
  }
}
for (const [i, name] of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].entries()) {
  // (WebSocket.Server / WebSocket.WebSocketServer are set below, as ws has them.)
  Object.defineProperty(WebSocket, name, { value: i, enumerable: true });
  Object.defineProperty(WebSocket.prototype, name, { value: i, enumerable: true });
}

function wrapEvent(target, type, listener) {
  if (type === 'message') return (data, isBinary) => listener.call(target, { type, target, data, isBinary });
  if (type === 'close') {
    return (code, reason) => listener.call(target, { type, target, code, reason: reason.toString(), wasClean: code !== 1006 });
  }
  if (type === 'error') return (error) => listener.call(target, { type, target, error, message: error && error.message });
  if (type === 'open') return () => listener.call(target, { type, target });
  return undefined;
}
for (const type of ['open', 'message', 'close', 'error']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    configurable: true,
    enumerable: true,
    get() {
      for (const l of this.listeners(type)) if (l._onProp) return l._listener;
      return null;
    },
    set(fn) {
      for (const l of this.listeners(type)) if (l._onProp) this.off(type, l);
      if (typeof fn !== 'function') return;
      const wrap = wrapEvent(this, type, fn);
      wrap._listener = fn;
      wrap._onProp = true;
      this.on(type, wrap);
    },
  });
}

// The behaviour of a ws-shaped route: (socket, req) handler, ws's options
// (handleProtocols, verifyClient, maxPayload, perMessageDeflate) and ours.
function wsShaped(opts, handler) {
  const o = opts || {};
  if (typeof handler !== 'function') throw new TypeError('quicklane: the WebSocket handler must be a function (socket, req) => ...');
  if (o.handleProtocols !== undefined && typeof o.handleProtocols !== 'function') {
    throw new TypeError('quicklane: handleProtocols must be a function (protocols, req) => string | false');
  }
  if (o.verifyClient !== undefined && typeof o.verifyClient !== 'function') {
    throw new TypeError('quicklane: verifyClient must be a function (info, [cb])');
  }
  const behavior = Object.assign({}, o);
  for (const name of BEHAVIOR_CALLBACKS) delete behavior[name];
  const userUpgrade = o.upgrade;
  if (userUpgrade !== undefined && typeof userUpgrade !== 'function') throw new TypeError('quicklane: upgrade must be a function');
  // ws chooses the first offered subprotocol unless handleProtocols says otherwise.
  behavior.upgrade = (req, ctx) => {
    const choose = () => {
      const offered = ctx.protocols;
      let protocol;
      if (o.handleProtocols !== undefined) {
        if (offered.length) {
          const chosen = o.handleProtocols(new Set(offered), new UpgradeRequest(req));
          protocol = chosen === false || chosen === undefined || chosen === null ? undefined : chosen;
        }
      } else {
        protocol = offered[0];
      }
      return protocol;
    };
    const accept = (data) => {
      const protocol = choose();
      let headers = o.headers;
      const wss = o._wss;
      if (wss !== undefined && wss.listenerCount('headers') > 0) {
        // ws's 'headers' event: the 101's lines, to which listeners may add.
        const key = req.header('sec-websocket-key') || '';
        const lines = ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade',
          `Sec-WebSocket-Accept: ${crypto.createHash('sha1').update(key + WS_GUID).digest('base64')}`];
        if (protocol !== undefined) lines.push(`Sec-WebSocket-Protocol: ${protocol}`);
        const fixed = lines.length;
        wss.emit('headers', lines, new UpgradeRequest(req));
        const own = headers === undefined || headers === null ? [] : Array.isArray(headers) ? headers
          : Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
        headers = own.concat(lines.slice(fixed));  // [name, value] pairs and "Name: value" lines
      }
      return ctx.accept({ protocol, headers, data });
    };
    if (userUpgrade !== undefined) {
      // (req, ctx) as in the uWS shape; accepting is ours (the subprotocol choice).
      const r = userUpgrade(req, ctx);
      const then = (v) => {
        if (ctx.decided) return;
        if (v === false) ctx.refuse(403);
        else accept(v && typeof v === 'object' ? v.data : undefined);
      };
      if (r && typeof r.then === 'function') return r.then(then);
      if (r === ctx) return ctx;
      then(r);
      return undefined;
    }
    if (o.verifyClient !== undefined) {
      const info = { origin: req.header('origin'), secure: false, req: new UpgradeRequest(req) };
      if (o.verifyClient.length >= 2) {
        return new Promise((resolve, reject) => {
          try {
            o.verifyClient(info, (ok, code, message, headers) => {
              try {
                if (ok) accept();
                else ctx.refuse(code || 401, message === undefined ? undefined : String(message), { headers });
                resolve();
              } catch (e) {
                reject(e);
              }
            });
          } catch (e) {
            reject(e);
          }
        });
      }
      if (!o.verifyClient(info)) {
        ctx.refuse(401);
        return undefined;
      }
    }
    accept();
    return undefined;
  };
  behavior.open = (ws, req) => {
    const socket = new WebSocket(ws, new UpgradeRequest(req));
    socket.data = ws.data;  // what an upgrade hook accepted with
    ws.data = socket;
    handler(socket, socket._req);
  };
  behavior.message = (ws, data, isBinary) => ws.data._message(data, isBinary);
  behavior.drain = (ws) => ws.data._drain();
  behavior.close = (ws, code, reason) => {
    if (ws.data instanceof WebSocket) ws.data._closed(code, reason);
  };
  behavior.ping = (ws, data) => ws.data.emit('ping', data);
  behavior.pong = (ws, data) => ws.data.emit('pong', data);
  return behavior;
}

/**
 * The `ws` library's WebSocketServer over quicklane: `new WebSocketServer({ port })`
 * serves on its own app; `{ app }` adds its route to an app that has not
 * started listening. Emits 'connection' (socket, req), 'listening', 'error',
 * 'close'. `path` limits it to one path (else every path).
 */
class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    const o = Object.assign({ clientTracking: true }, options);
    if (o.server !== undefined || o.noServer) {
      throw new TypeError('quicklane: WebSocketServer cannot attach to a node:http server or handle raw upgrades ' +
        '(server / noServer): pass { port } or { app } (a quicklane app) instead');
    }
    if ((o.port === undefined) === (o.app === undefined)) {
      throw new TypeError('quicklane: one and only one of the "port" and "app" options must be given');
    }
    this.options = o;
    this.clients = o.clientTracking ? new Set() : undefined;
    this._own = o.app === undefined;
    this._app = this._own ? deps.app() : o.app;
    this._closed = false;
    const routeOpts = Object.assign({}, o);
    for (const k of ['port', 'host', 'app', 'path', 'server', 'noServer', 'clientTracking', 'backlog']) delete routeOpts[k];
    routeOpts._wss = this;  // its 'headers' event
    const connection = (socket, req) => {
      if (this.clients !== undefined) {
        this.clients.add(socket);
        socket.once('close', () => this.clients.delete(socket));
      }
      this.emit('connection', socket, req);
    };
    if (o.path !== undefined) {
      this._app.ws(o.path, routeOpts, connection);
    } else {
      this._app.ws('/', routeOpts, connection);
      this._app.ws('/*path', routeOpts, connection);
    }
    if (typeof callback === 'function') this.once('listening', callback);
    if (this._own) {
      this._app.listen({ host: o.host, port: o.port, backlog: o.backlog }).then(
        () => this.emit('listening'),
        (err) => {
          if (this.listenerCount('error') > 0) this.emit('error', err);
          else console.error('quicklane: WebSocketServer could not listen:', err);
        });
    }
  }
  /** The bound address ({ address, family, port }) of its own app. */
  address() { return this._app.address(); }
  /** The quicklane app serving it. */
  get app() { return this._app; }
  /** Closes its own app (the sockets get 1001); with { app }, only emits 'close'. */
  close(cb) {
    if (this._closed) {
      if (typeof cb === 'function') process.nextTick(cb, toError('The server is not running'));
      return;
    }
    this._closed = true;
    const done = () => {
      this.emit('close');
      if (typeof cb === 'function') cb();
    };
    if (this._own) this._app.close().then(done, done);
    else process.nextTick(done);
  }
  handleUpgrade() {
    throw new TypeError('quicklane: handleUpgrade is not available (the core does the upgrade): use { port } or { app }');
  }
  shouldHandle() { return true; }
}

// `const WebSocket = require('ws'); new WebSocket.Server(...)` ports as
// `const { WebSocket } = require('quicklane'); new WebSocket.Server(...)`.
WebSocket.Server = WebSocketServer;
WebSocket.WebSocketServer = WebSocketServer;

// Test hooks: what is held for JS, to see that nothing leaks.
function liveHandles() {
  const n = native.liveHandles();
  n.sockets = openCount;
  n.pendingAccepts = pending.size;
  return n;
}

module.exports = {
  setup,
  addRoute,
  wsShaped,
  publishOn,
  serverGone,
  ServerWebSocket,
  UpgradeContext,
  UpgradeRequest,
  WebSocket,
  WebSocketServer,
  liveHandles,
  DISABLED,
  SHARED_COMPRESSOR,
  DEDICATED_COMPRESSOR,
};
