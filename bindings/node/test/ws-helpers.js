'use strict';
// Helpers of the WebSocket tests: the `ws` package as a client, a raw client
// (exact bytes, a socket that never reads, a cut at a chosen moment), and a
// wait with a bound.
const net = require('node:net');
const crypto = require('node:crypto');
const WS = require('ws');
const quicklane = require('..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves once cond() is true; fails after `ms`.
async function until(cond, ms = 5000, what = 'condition') {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

// A `ws` client; resolves when open (rejects on error or an HTTP answer).
function connect(url, protocols, options) {
  return new Promise((resolve, reject) => {
    const c = new WS(url, protocols, options);
    queue(c);  // messages that come with the 101 are kept
    c.on('open', () => resolve(c));
    c.on('error', reject);
    c.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const err = new Error(`HTTP ${res.statusCode}`);
        err.status = res.statusCode;
        err.headers = res.headers;
        err.body = Buffer.concat(chunks).toString();
        reject(err);
      });
    });
  });
}

// The next message (data, isBinary) of a `ws` client. Messages are queued
// from the first call on (ws emits every message of one read at once).
function queue(c) {
  let q = c._testQueue;
  if (q === undefined) {
    q = c._testQueue = { items: [], waiters: [], closed: undefined };
    c.on('message', (data, isBinary) => {
      const w = q.waiters.shift();
      if (w) w.resolve([data, isBinary]);
      else q.items.push([data, isBinary]);
    });
    c.on('close', (code) => {
      q.closed = code;
      for (const w of q.waiters.splice(0)) w.reject(new Error(`closed (${code}) before a message`));
    });
  }
  return q;
}
function nextMessage(c) {
  const q = queue(c);
  if (q.items.length) return Promise.resolve(q.items.shift());
  if (q.closed !== undefined) return Promise.reject(new Error(`closed (${q.closed}) before a message`));
  return new Promise((resolve, reject) => q.waiters.push({ resolve, reject }));
}

function closed(c) {
  if (c.readyState === WS.CLOSED) return Promise.resolve([c._closeCode, Buffer.from(c._closeMessage || '')]);
  return new Promise((resolve) => c.once('close', (code, reason) => resolve([code, reason])));
}

// A raw client: the handshake by hand, then frames (masked) out, bytes in.
class RawWs {
  constructor(port, path, { read = true, extra = '' } = {}) {
    this.sock = net.connect(port, '127.0.0.1');
    this.buf = Buffer.alloc(0);
    this.closed = false;
    this.sock.on('error', () => {});
    this.sock.on('close', () => { this.closed = true; });
    this.key = crypto.randomBytes(16).toString('base64');
    this.path = path;
    this.extra = extra;
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); });
    this.read = read;
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
  }
  handshake() {
    this.sock.write(`GET ${this.path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${this.key}\r\n${this.extra}\r\n`);
  }
  async open() {
    await this.ready;
    this.handshake();
    await until(() => this.buf.indexOf('\r\n\r\n') >= 0 || this.closed, 5000, 'the 101');
    const end = this.buf.indexOf('\r\n\r\n');
    const head = this.buf.subarray(0, end).toString('latin1');
    this.buf = this.buf.subarray(end + 4);
    if (!head.startsWith('HTTP/1.1 101')) throw new Error(`no 101: ${head.split('\r\n')[0]}`);
    if (!this.read) this.sock.pause();  // a client that never reads (its kernel buffer fills)
    return this;
  }
  frame(opcode, payload) {
    payload = Buffer.from(payload);
    const mask = crypto.randomBytes(4);
    let head;
    if (payload.length < 126) head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
    else if (payload.length < 65536) {
      head = Buffer.alloc(4);
      head[0] = 0x80 | opcode;
      head[1] = 0x80 | 126;
      head.writeUInt16BE(payload.length, 2);
    } else {
      head = Buffer.alloc(10);
      head[0] = 0x80 | opcode;
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(payload.length), 2);
    }
    const masked = Buffer.from(payload);
    for (let i = 0; i < masked.length; i++) masked[i] ^= mask[i & 3];
    this.sock.write(Buffer.concat([head, mask, masked]));
  }
  destroy() { this.sock.destroy(); }
  resume() { this.sock.resume(); }
}

function leakFree() {
  return quicklane._liveHandles();
}

// No handle held for JS once everything is closed.
async function noLeak(ms = 3000) {
  await until(() => {
    const h = quicklane._liveHandles();
    return h.webSockets === 0 && h.requests === 0 && h.sockets === 0 && h.pendingAccepts === 0;
  }, ms, `handles released (${JSON.stringify(quicklane._liveHandles())})`);
}

module.exports = { WS, sleep, until, once, connect, nextMessage, closed, RawWs, leakFree, noLeak };
