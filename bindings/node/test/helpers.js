'use strict';
const net = require('node:net');

// Minimal HTTP/1.1 client on a raw socket: pipelining, exact bytes, and
// aborts at chosen moments. Parses Content-Length responses only.
class RawClient {
  constructor(port, host = '127.0.0.1') {
    this.sock = net.connect(port, host);
    this.buf = Buffer.alloc(0);
    this.waiters = [];
    this.closed = false;
    this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._pump(); });
    this.sock.on('close', () => { this.closed = true; this._pump(); });
    this.sock.on('error', () => {});
    this.ready = new Promise((resolve, reject) => {
      this.sock.once('connect', resolve);
      this.sock.once('error', reject);
    });
  }
  send(data) { this.sock.write(data); }
  _parse() {
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return null;
    const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const [, status] = head[0].split(' ');
    const headers = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] || 0);
    if (this.buf.length < end + 4 + len) return null;
    const body = this.buf.subarray(end + 4, end + 4 + len);
    this.buf = this.buf.subarray(end + 4 + len);
    return { status: Number(status), headers, body, text: body.toString('utf8') };
  }
  _pump() {
    while (this.waiters.length) {
      const r = this._parse();
      if (r) { this.waiters.shift().resolve(r); continue; }
      if (this.closed) { this.waiters.shift().reject(new Error('connection closed')); continue; }
      break;
    }
  }
  read() {
    return new Promise((resolve, reject) => { this.waiters.push({ resolve, reject }); this._pump(); });
  }
  close() { this.sock.destroy(); }
  waitClosed() {
    return this.closed ? Promise.resolve() : new Promise((r) => this.sock.once('close', r));
  }
}

function get(path, extra = '') {
  return `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
}
function post(path, body, type = 'application/json') {
  const b = Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Type: ${type}\r\nContent-Length: ${b.length}\r\n\r\n`), b]);
}

async function request(port, data) {
  const c = new RawClient(port);
  await c.ready;
  c.send(data);
  try { return await c.read(); } finally { c.close(); }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { RawClient, get, post, request, sleep };
