'use strict';
// The `ws`-library-shaped API: app.ws(path, (socket, req) => ...), app.get(path,
// { websocket: true }, ...) as @fastify/websocket, and WebSocketServer.
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');
const { WebSocket, WebSocketServer } = quicklane;
const { WS, sleep, until, once, connect, nextMessage, closed, RawWs, noLeak } = require('./ws-helpers');

test('socket events and send(data, options, cb): Buffers in, text and binary out, close with a Buffer reason', async () => {
  const app = quicklane.app();
  const events = [];
  let sock;
  let request;
  app.ws('/chat/:room', (socket, req) => {
    sock = socket;
    request = req;
    assert.ok(socket instanceof WebSocket);
    assert.equal(socket.readyState, WebSocket.OPEN);
    assert.equal(socket.OPEN, 1);
    socket.on('message', (data, isBinary) => {
      events.push(['message', Buffer.isBuffer(data), isBinary, data.toString()]);
      socket.send(data, { binary: isBinary }, (err) => events.push(['sent', err === undefined ? null : err]));
      if (data.toString() === 'num') socket.send(42);
    });
    socket.on('close', (code, reason) => events.push(['close', code, Buffer.isBuffer(reason), reason.toString()]));
  });
  await app.listen({ port: 0 });
  const c = await connect(`ws://127.0.0.1:${app.port}/chat/blue?x=1&x=2`, undefined, { headers: { 'x-user': 'ann' } });
  await until(() => sock !== undefined);
  assert.equal(request.url, '/chat/blue?x=1&x=2');
  assert.deepEqual({ ...request.params }, { room: 'blue' });
  assert.deepEqual(request.query.x, ['1', '2']);
  assert.equal(request.headers['x-user'], 'ann');
  assert.equal(request.socket.remoteAddress, '127.0.0.1');
  c.send('héllo');
  let [d, b] = await nextMessage(c);
  assert.equal(d.toString(), 'héllo');
  assert.equal(b, false);
  c.send(Buffer.from([1, 2, 3]));
  [d, b] = await nextMessage(c);
  assert.deepEqual([...d], [1, 2, 3]);
  assert.equal(b, true);
  c.send('num');
  await nextMessage(c);
  [d, b] = await nextMessage(c);
  assert.equal(d.toString(), '42');
  assert.equal(b, false);
  assert.equal(typeof sock.bufferedAmount, 'number');
  assert.equal(sock.protocol, '');
  c.close(4000, 'see you');
  await closed(c);
  await until(() => events.some((e) => e[0] === 'close'));
  assert.deepEqual(events.filter((e) => e[0] === 'message').map((e) => e.slice(1)),
    [[true, false, 'héllo'], [true, true, '\u0001\u0002\u0003'], [true, false, 'num']]);
  assert.deepEqual(events.filter((e) => e[0] === 'sent').map((e) => e[1]), [null, null, null]);
  assert.deepEqual(events.find((e) => e[0] === 'close'), ['close', 4000, true, 'see you']);
  assert.equal(sock.readyState, WebSocket.CLOSED);
  // Sends after close: the callback gets an error, nothing throws.
  const err = await new Promise((r) => sock.send('late', r));
  assert.match(err.message, /not open: readyState 3 \(CLOSED\)/);
  sock.send('late without a callback');
  sock.close();
  sock.terminate();
  await app.close();
  await noLeak();
});

test('server close(code, reason) and terminate(); ws-style validation', async () => {
  const app = quicklane.app();
  app.ws('/c', (socket) => {
    socket.on('message', (m) => {
      const what = m.toString();
      if (what === 'close') socket.close(4100, 'bye now');
      else if (what === 'close-default') socket.close();
      else if (what === 'terminate') socket.terminate();
      else if (what === 'validate') {
        assert.throws(() => socket.close(1005), { name: 'TypeError', message: 'First argument must be a valid error code number' });
        assert.throws(() => socket.close('1000'), TypeError);
        assert.throws(() => socket.close(1000, 'x'.repeat(124)), RangeError);
        assert.throws(() => socket.send({}), TypeError);
        socket.send('validated');
      }
    });
  });
  await app.listen({ port: 0 });
  const url = `ws://127.0.0.1:${app.port}/c`;
  let c = await connect(url);
  c.send('validate');
  assert.equal((await nextMessage(c))[0].toString(), 'validated');
  c.send('close');
  let [code, reason] = await closed(c);
  assert.deepEqual([code, reason.toString()], [4100, 'bye now']);
  c = await connect(url);
  c.send('close-default');
  [code] = await closed(c);
  assert.equal(code, 1000);
  c = await connect(url);
  c.send('terminate');
  [code] = await closed(c);
  assert.equal(code, 1006);
  await app.close();
  await noLeak();
});

test('subprotocols: the first offered by default, handleProtocols decides otherwise', async () => {
  const app = quicklane.app();
  app.ws('/first', (socket) => socket.send(socket.protocol));
  app.ws('/choose', { handleProtocols: (protocols, req) => (protocols.has('b') && req.url === '/choose' ? 'b' : false) },
    (socket) => socket.send(`chose:${socket.protocol}`));
  await app.listen({ port: 0 });
  const base = `ws://127.0.0.1:${app.port}`;
  const a = await connect(base + '/first', ['x', 'y']);
  assert.equal(a.protocol, 'x');
  assert.equal((await nextMessage(a))[0].toString(), 'x');
  const b = await connect(base + '/choose', ['a', 'b']);
  assert.equal(b.protocol, 'b');
  assert.equal((await nextMessage(b))[0].toString(), 'chose:b');
  // handleProtocols → false: no subprotocol in the 101 (ws's client then gives up, as against ws).
  await assert.rejects(connect(base + '/choose', ['a']), /no subprotocol/);
  const none = await connect(base + '/first');
  assert.equal(none.protocol, '');
  for (const s of [a, b, none]) s.close();
  await Promise.all([a, b, none].map(closed));
  await app.close();
  await noLeak();
});

test('verifyClient (sync and with a callback) refuses with its code', async () => {
  const app = quicklane.app();
  app.ws('/sync', { verifyClient: (info) => info.req.headers['x-key'] === 'k' && info.origin === 'http://ok' },
    (socket) => socket.send('in'));
  app.ws('/cb', {
    verifyClient(info, cb) {
      setTimeout(() => (info.req.query.ok ? cb(true) : cb(false, 418, 'teapot', { 'x-why': 'tea' })), 5);
    },
  }, (socket) => socket.send('in too'));
  await app.listen({ port: 0 });
  const base = `ws://127.0.0.1:${app.port}`;
  const ok = await connect(base + '/sync', undefined, { headers: { 'x-key': 'k' }, origin: 'http://ok' });
  assert.equal((await nextMessage(ok))[0].toString(), 'in');
  await assert.rejects(connect(base + '/sync', undefined, { headers: { 'x-key': 'nope' } }), (e) => e.status === 401);
  const ok2 = await connect(base + '/cb?ok=1');
  assert.equal((await nextMessage(ok2))[0].toString(), 'in too');
  await assert.rejects(connect(base + '/cb'), (e) => e.status === 418 && e.body === 'teapot' && e.headers['x-why'] === 'tea');
  ok.close();
  ok2.close();
  await Promise.all([closed(ok), closed(ok2)]);
  await app.close();
  await noLeak();
});

test('@fastify/websocket shape: app.get(path, { websocket: true }, (socket, req) => ...)', async () => {
  const app = quicklane.app();
  app.get('/ws/:id', { websocket: true }, (socket, req) => {
    socket.on('message', (m) => socket.send(`${req.params.id}:${m}`));
  });
  app.get('/plain', () => ({ plain: true }));
  await app.listen({ port: 0 });
  const c = await connect(`ws://127.0.0.1:${app.port}/ws/9`);
  c.send('hi');
  assert.equal((await nextMessage(c))[0].toString(), '9:hi');
  const res = await fetch(`http://127.0.0.1:${app.port}/plain`);
  assert.deepEqual(await res.json(), { plain: true });
  c.close();
  await closed(c);
  await app.close();
  await noLeak();
});

test('WebSocketServer({ port }): connection, clients, the raw ServerWebSocket for pub/sub, close()', async () => {
  const wss = new WebSocketServer({ port: 0 });
  await new Promise((r) => wss.on('listening', r));
  const { port } = wss.address();
  assert.ok(port > 0);
  wss.on('connection', (socket, req) => {
    socket.raw.subscribe('all');
    socket.on('message', (data) => {
      // Broadcast to every client, as ws's README does it.
      for (const client of wss.clients) if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
    });
    socket.send(`welcome ${req.url}`);
  });
  const a = await connect(`ws://127.0.0.1:${port}/any/path`);
  const b = await connect(`ws://127.0.0.1:${port}/`);
  assert.equal((await nextMessage(a))[0].toString(), 'welcome /any/path');
  assert.equal((await nextMessage(b))[0].toString(), 'welcome /');
  assert.equal(wss.clients.size, 2);
  a.send('to everyone');
  assert.equal((await nextMessage(a))[0].toString(), 'to everyone');
  assert.equal((await nextMessage(b))[0].toString(), 'to everyone');
  assert.equal(wss.app.publish('all', 'via topic'), 2);
  assert.equal((await nextMessage(b))[0].toString(), 'via topic');
  b.close();
  await closed(b);
  await until(() => wss.clients.size === 1);
  const aClosed = closed(a);
  await new Promise((r) => wss.close(r));
  assert.equal((await aClosed)[0], 1001);
  assert.equal(wss.clients.size, 0);
  assert.throws(() => new WebSocketServer({ noServer: true }), /cannot attach/);
  assert.throws(() => new WebSocketServer({}), /one and only one/);
  assert.throws(() => wss.handleUpgrade(), TypeError);
  await noLeak();
});

test('WebSocketServer({ app, path }) shares an app with HTTP routes', async () => {
  const app = quicklane.app();
  app.get('/hello', () => 'hi');
  const wss = new WebSocketServer({ app, path: '/live' });
  const seen = [];
  wss.on('connection', (socket) => socket.on('message', (m) => seen.push(m.toString())));
  await app.listen({ port: 0 });
  const c = await connect(`ws://127.0.0.1:${app.port}/live`);
  c.send('x');
  await until(() => seen.length === 1);
  assert.equal(await (await fetch(`http://127.0.0.1:${app.port}/hello`)).text(), 'hi');
  await assert.rejects(connect(`ws://127.0.0.1:${app.port}/elsewhere`), (e) => e.status === 404);
  c.close();
  await closed(c);
  await app.close();
  await noLeak();
});

test('errors in listeners close the socket 1011; send callbacks wait for a drain; pause/resume; binaryType', async () => {
  const errors = [];
  const origError = console.error;
  console.error = (...a) => errors.push(a.map(String).join(' '));
  let server;
  const app = quicklane.app();
  app.ws('/e', (socket) => {
    socket.on('message', (m) => {
      if (m.toString() === 'throw') throw new Error('listener failure');
    });
  });
  app.ws('/bp', { maxBackpressure: 256 * 1024 }, (socket) => { server = socket; });
  app.ws('/kinds', (socket) => {
    socket.binaryType = 'arraybuffer';
    socket.pause();
    const got = [];
    socket.on('message', (d, isBinary) => {
      got.push([d instanceof ArrayBuffer, isBinary]);
      if (got.length === 2) socket.send(JSON.stringify(got));
    });
    setTimeout(() => { assert.equal(socket.isPaused, true); socket.resume(); }, 30);
    socket.onclose = (ev) => socket.send(String(ev.code));
    assert.throws(() => { socket.binaryType = 'blob'; }, TypeError);
  });
  try {
    await app.listen({ port: 0 });
    const c = await connect(`ws://127.0.0.1:${app.port}/e`);
    c.send('throw');
    assert.equal((await closed(c))[0], 1011);
    assert.ok(errors.some((l) => l.includes('listener failure')));

    const k = await connect(`ws://127.0.0.1:${app.port}/kinds`);
    k.send('text');
    k.send(Buffer.from([1]));
    assert.deepEqual(JSON.parse((await nextMessage(k))[0].toString()), [[true, false], [true, true]]);
    k.close();
    await closed(k);

    const raw = await new RawWs(app.port, '/bp', { read: false }).open();
    await until(() => server !== undefined);
    const done = [];
    let i = 0;
    // Send until a callback is held (the core is over half its limit), bounded.
    while (i < 2000) {
      const n = i++;
      server.send(Buffer.alloc(16 * 1024), (err) => done.push([n, err]));
      await sleep(0);
      if (i - done.length > 1 && server.bufferedAmount > 128 * 1024) break;
    }
    await sleep(20);
    const held = i - done.length;
    assert.ok(held >= 1, `no callback held after ${i} sends`);
    raw.resume();
    await until(() => done.length === i, 10000, 'every send callback');
    assert.ok(done.every(([, err]) => err === undefined));
    raw.destroy();
    await until(() => server.readyState === WebSocket.CLOSED);
  } finally {
    console.error = origError;
  }
  await app.close();
  await noLeak();
});

test('a message dropped without a callback is an error event (closeOnBackpressureLimit: false)', async () => {
  let server;
  const app = quicklane.app();
  app.ws('/d', { maxBackpressure: 64 * 1024, closeOnBackpressureLimit: false }, (socket) => { server = socket; });
  await app.listen({ port: 0 });
  const raw = await new RawWs(app.port, '/d', { read: false }).open();
  await until(() => server !== undefined);
  const errors = [];
  server.on('error', (e) => errors.push(e.code));
  for (let i = 0; i < 4000 && errors.length === 0; i++) {
    server.send(Buffer.alloc(16 * 1024));
    if (i % 64 === 63) await sleep(1);
  }
  await until(() => errors.length > 0);
  assert.equal(errors[0], 'QL_WS_DROPPED');
  assert.equal(server.readyState, WebSocket.OPEN);  // not closed: the limit only drops
  raw.destroy();
  await until(() => server.readyState === WebSocket.CLOSED);
  await app.close();
  await noLeak();
});

test("WebSocketServer's 'headers' event adds to the 101; WebSocket.Server is WebSocketServer", async () => {
  assert.equal(WebSocket.Server, WebSocketServer);
  const wss = new WebSocket.Server({ port: 0, headers: { 'x-static': 'yes' } });
  wss.on('headers', (headers, req) => {
    assert.equal(headers[0], 'HTTP/1.1 101 Switching Protocols');
    headers.push(`Set-Cookie: seen=${req.query.n}`);
  });
  await new Promise((r) => wss.on('listening', r));
  const c = new WS(`ws://127.0.0.1:${wss.address().port}/x?n=5`);
  const [res] = await new Promise((r) => c.on('upgrade', (...a) => r(a)));
  assert.deepEqual(res.headers['set-cookie'], ['seen=5']);
  assert.equal(res.headers['x-static'], 'yes');
  await new Promise((r) => (c.readyState === WS.OPEN ? r() : c.on('open', r)));
  c.close();
  await closed(c);
  await new Promise((r) => wss.close(r));
  await noLeak();
});

test("ws's heartbeat idiom: socket.ping() then the client's 'pong' event; ping callbacks; RangeError over 125 bytes", async () => {
  let socket;
  const app = quicklane.app();
  app.ws('/hb', (s) => { socket = s; });
  await app.listen({ port: 0 });
  const c = await connect(`ws://127.0.0.1:${app.port}/hb`);  // ws answers pings itself
  await until(() => socket !== undefined);
  // The heartbeat of ws's README: isAlive, ping(), 'pong' sets it again.
  socket.isAlive = false;
  const pong = once(socket, 'pong');
  const clientPing = once(c, 'ping');
  let sent;
  socket.ping(() => { sent = true; });
  const [data] = await pong;
  assert.ok(Buffer.isBuffer(data));
  assert.equal(data.length, 0);
  assert.equal(sent, true);
  assert.equal((await clientPing)[0].length, 0);
  socket.isAlive = true;
  // With data, a number as its text, and a mask that is ignored.
  const pong2 = once(socket, 'pong');
  socket.ping(42, true, (err) => assert.equal(err, undefined));
  assert.equal((await pong2)[0].toString(), '42');
  const clientPong = once(c, 'pong');
  socket.pong('beat');
  assert.equal((await clientPong)[0].toString(), 'beat');
  assert.throws(() => socket.ping(Buffer.alloc(126)), { name: 'RangeError', message: 'The data size must not be greater than 125 bytes' });
  c.close();
  await once(socket, 'close');
  const err = await new Promise((r) => socket.ping('late', undefined, r));
  assert.match(err.message, /not open: readyState 3/);
  socket.ping();  // no callback: nothing happens
  await app.close();
  await noLeak();
});
