'use strict';
// app.ws(path, behavior): the uWebSockets.js / Bun-shaped WebSocket API.
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');
const { WS, sleep, until, connect, nextMessage, closed, RawWs, noLeak } = require('./ws-helpers');

async function serve(setup, listenOpts) {
  const app = quicklane.app();
  setup(app);
  await app.listen(Object.assign({ port: 0 }, listenOpts));
  return { app, url: `ws://127.0.0.1:${app.port}` };
}

test('echo: text as text, binary as binary, large, every binary type; isBinary overrides', async () => {
  const got = [];
  const { app, url } = await serve((a) => a.ws('/echo', {
    message(ws, message, isBinary) {
      got.push([typeof message, Buffer.isBuffer(message), isBinary]);
      if (message === 'typed') {
        assert.equal(ws.send(new Uint16Array([0x4142, 0x4344])), 4);
        assert.equal(ws.send(new Uint8Array([1, 2, 3]).buffer), 3);
        assert.equal(ws.send(new DataView(new Uint8Array([9, 8]).buffer)), 2);
        assert.equal(ws.send('as binary', true), 9);
        assert.equal(ws.send(Buffer.from('as text'), false), 7);
        assert.equal(ws.send(''), 1);  // a success is never 0
        return;
      }
      ws.send(message, isBinary);
    },
  }));
  const c = await connect(url + '/echo');
  c.send('grüße');
  let [data, isBinary] = await nextMessage(c);
  assert.equal(data.toString(), 'grüße');
  assert.equal(isBinary, false);
  c.send(Buffer.from([0, 255, 16]));
  [data, isBinary] = await nextMessage(c);
  assert.deepEqual([...data], [0, 255, 16]);
  assert.equal(isBinary, true);
  const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'x');
  big[12345] = 1;
  c.send(big);
  [data, isBinary] = await nextMessage(c);
  assert.ok(isBinary);
  assert.ok(data.equals(big));
  const bigText = 'é'.repeat(600000);
  c.send(bigText);
  [data, isBinary] = await nextMessage(c);
  assert.equal(isBinary, false);
  assert.equal(data.toString(), bigText);
  assert.deepEqual(got.slice(0, 2), [['string', false, false], ['object', true, true]]);

  c.send('typed');
  const msgs = [];
  for (let i = 0; i < 6; i++) msgs.push(await nextMessage(c));
  assert.deepEqual(msgs.map(([d, b]) => [b, d.length]), [[true, 4], [true, 3], [true, 2], [true, 9], [false, 7], [false, 0]]);
  assert.deepEqual([...msgs[0][0]], [0x42, 0x41, 0x44, 0x43]);
  c.close();
  await closed(c);
  await app.close();
  await noLeak();
});

test('upgrade: accept with data, subprotocol and headers; refuse with status and body; errors', async () => {
  const opened = [];
  const { app, url } = await serve((a) => {
    a.ws('/room/:name', {
      upgrade(req, ctx) {
        const who = req.query.who;
        if (who === 'nobody') return ctx.refuse(401, { error: 'who are you' }, { headers: { 'www-authenticate': 'Token' } });
        if (who === 'thrower') throw Object.assign(new Error('not today'), { statusCode: 429 });
        if (who === 'crash') throw new Error('a bug');
        if (who === 'false') return false;
        if (who === 'bad-proto') return ctx.accept({ protocol: 'never-offered' });
        if (who === 'bad-return') return 42;
        assert.deepEqual(ctx.protocols, who === 'proto' ? ['a', 'chat'] : []);
        ctx.accept({ data: { who, room: req.params.name }, protocol: who === 'proto' ? 'chat' : undefined,
          headers: { 'x-room': req.params.name } });
        assert.throws(() => ctx.accept(), /already accepted or refused/);
        return undefined;
      },
      open(ws, req) {
        opened.push([ws.data, req.params.name, req.header('x-hello'), ws.protocol, ws.getRemoteAddress()]);
      },
    });
  });
  const errors = [];
  const origError = console.error;
  console.error = (...a) => errors.push(a.join(' '));
  try {
    const c = new WS(url + '/room/blue?who=ann', { headers: { 'x-hello': 'hi' } });
    const upgraded = new Promise((r) => c.on('upgrade', (...a) => r(a)));
    const opened1 = new Promise((r) => c.on('open', r));
    const [res] = await upgraded;
    assert.equal(res.headers['x-room'], 'blue');
    await opened1;
    const p = await connect(url + '/room/red?who=proto', ['a', 'chat']);
    assert.equal(p.protocol, 'chat');
    await until(() => opened.length === 2);
    assert.deepEqual(opened[0], [{ who: 'ann', room: 'blue' }, 'blue', 'hi', '', '127.0.0.1']);
    assert.deepEqual(opened[1].slice(0, 4), [{ who: 'proto', room: 'red' }, 'red', undefined, 'chat']);

    const refused = async (q, proto) => {
      try {
        await connect(url + '/room/x?who=' + q, proto);
      } catch (e) {
        return e;
      }
      throw new Error('accepted');
    };
    let e = await refused('nobody');
    assert.equal(e.status, 401);
    assert.equal(e.headers['www-authenticate'], 'Token');
    assert.deepEqual(JSON.parse(e.body), { error: 'who are you' });
    e = await refused('thrower');
    assert.equal(e.status, 429);
    assert.deepEqual(JSON.parse(e.body), { detail: 'not today' });
    e = await refused('false');
    assert.equal(e.status, 403);
    e = await refused('crash');
    assert.equal(e.status, 500);
    e = await refused('bad-proto', ['x']);
    assert.equal(e.status, 500);
    e = await refused('bad-return');
    assert.equal(e.status, 500);
    assert.ok(errors.some((l) => l.includes('a bug')), errors.join('\n'));
    assert.ok(errors.some((l) => l.includes('never-offered')), errors.join('\n'));
    assert.ok(errors.some((l) => l.includes('upgrade returned number')), errors.join('\n'));
    c.close();
    p.close();
    await Promise.all([closed(c), closed(p)]);
  } finally {
    console.error = origError;
  }
  await app.close();
  await noLeak();
});

test('upgrade decided later: async accept from a promise, async refuse, return ctx', async () => {
  let later;
  const { app, url } = await serve((a) => {
    a.ws('/async', {
      async upgrade(req, ctx) {
        await sleep(20);
        if (req.query.no !== undefined) throw Object.assign(new Error('denied'), { statusCode: 403 });
        ctx.accept({ data: req.query.n });
      },
      message(ws, m) { ws.send(`${ws.data}:${m}`); },
    });
    a.ws('/later', {
      upgrade(req, ctx) {
        later = ctx;
        return ctx;  // decided later
      },
      open(ws) { ws.send('opened later'); },
    });
    a.ws('/resolved', {
      upgrade: () => Promise.resolve({ data: 'from the promise' }),
      open(ws) { ws.send(String(ws.data)); },
    });
  });
  const c = await connect(url + '/async?n=7');
  c.send('x');
  assert.equal((await nextMessage(c))[0].toString(), '7:x');
  await assert.rejects(connect(url + '/async?no'), (e) => e.status === 403 && JSON.parse(e.body).detail === 'denied');
  const pl = new WS(url + '/later');
  const firstMessage = new Promise((r) => pl.once('message', (d) => r(d.toString())));
  await until(() => later !== undefined);
  await sleep(30);
  assert.equal(pl.readyState, WS.CONNECTING);
  assert.equal(later.accept(), true);
  assert.equal(await firstMessage, 'opened later');
  const r = await connect(url + '/resolved');
  assert.equal((await nextMessage(r))[0].toString(), 'from the promise');
  for (const s of [c, pl, r]) s.close();
  await Promise.all([closed(c), closed(pl), closed(r)]);
  await app.close();
  await noLeak();
});

test('close codes both ways; cut; bad codes and reasons are refused', async () => {
  const closes = [];
  let server;
  const { app, url } = await serve((a) => a.ws('/c', {
    open(ws) { server = ws; },
    message(ws, m) {
      if (m === 'end') ws.end(4002, 'done here');
      else if (m === 'bun-close') ws.close(4003, 'bun style');
      else if (m === 'cut') ws.close();
      else if (m === 'terminate') ws.terminate();
    },
    close(ws, code, reason) { closes.push([code, reason, ws.readyState]); },
  }));
  // The client closes with a code and a reason.
  let c = await connect(url + '/c');
  c.close(4001, 'bye');
  await closed(c);
  await until(() => closes.length === 1);
  assert.deepEqual(closes[0], [4001, 'bye', 3]);
  // The server ends with a code and a reason (uWS end, Bun close(code)).
  for (const [what, code, reason] of [['end', 4002, 'done here'], ['bun-close', 4003, 'bun style']]) {
    c = await connect(url + '/c');
    c.send(what);
    const [cc, cr] = await closed(c);
    assert.equal(cc, code);
    assert.equal(cr.toString(), reason);
  }
  await until(() => closes.length === 3);
  assert.deepEqual(closes.slice(1).map((x) => x[0]), [4002, 4003]);
  // Cut: the client sees no close frame (1006), the server's close gets 1006.
  for (const what of ['cut', 'terminate']) {
    c = await connect(url + '/c');
    c.send(what);
    const [cc] = await closed(c);
    assert.equal(cc, 1006);
  }
  await until(() => closes.length === 5);
  assert.deepEqual(closes.slice(3).map((x) => x[0]), [1006, 1006]);
  // A client without a code: 1005.
  c = await connect(url + '/c');
  await until(() => server && server.readyState === 1);
  c.close();
  await closed(c);
  await until(() => closes.length === 6);
  assert.equal(closes[5][0], 1005);
  // Bad codes and reasons, on an open socket.
  c = await connect(url + '/c');
  await until(() => server.readyState === 1 && closes.length === 6);
  assert.throws(() => server.end(1005), RangeError);
  assert.throws(() => server.end(2999), RangeError);
  assert.throws(() => server.end(1.5), RangeError);
  assert.throws(() => server.end(1000, 'x'.repeat(124)), RangeError);
  assert.throws(() => server.end(1000, 42), TypeError);
  assert.equal(server.readyState, 1);
  assert.equal(server.end(1000, 'fine'), true);
  assert.equal(server.end(1000), false);  // closing already
  await closed(c);
  await app.close();
  await noLeak();
});

test('calls after close are safe: send 0, subscribe false, publish still works', async () => {
  let kept;
  let closeSeen = false;
  const { app, url } = await serve((a) => a.ws('/k', {
    open(ws) { kept = ws; ws.subscribe('t'); },
    close(ws) {
      closeSeen = true;
      assert.equal(ws.send('late'), 0);
      assert.equal(ws.isSubscribed('t'), false);
    },
  }));
  const c = await connect(url + '/k');
  await until(() => kept !== undefined);
  c.terminate();
  await until(() => closeSeen);
  assert.equal(kept.readyState, 3);
  assert.equal(kept.isClosed, true);
  assert.equal(kept.send('x'), 0);
  assert.equal(kept.send(Buffer.from('x'), true), 0);
  assert.throws(() => kept.send({}), TypeError);  // bad input is still refused
  assert.equal(kept.subscribe('t'), false);
  assert.equal(kept.unsubscribe('t'), false);
  assert.deepEqual(kept.getTopics(), []);
  assert.equal(kept.getBufferedAmount(), 0);
  assert.equal(kept.end(1000), false);
  assert.equal(kept.close(), undefined);
  kept.terminate();
  assert.equal(kept.publish('t', 'to nobody'), 0);
  await app.close();
  assert.equal(kept.send('after the server closed'), 0);
  assert.equal(app.publish('t', 'x'), 0);
  await noLeak();
});

test('publish and subscribe: ws.publish excludes the sender, app.publish reaches all, from a timer too', async () => {
  const sockets = [];
  const { app, url } = await serve((a) => a.ws('/pub/:topic', {
    open(ws, req) {
      ws.data = req.params.topic;
      assert.equal(ws.subscribe(ws.data), true);
      assert.equal(ws.subscribe(ws.data), true);  // twice is once
      assert.equal(ws.isSubscribed(ws.data), true);
      assert.deepEqual(ws.getTopics(), [ws.data]);
      sockets.push(ws);
    },
    message(ws, m) {
      if (m === 'leave') {
        assert.equal(ws.unsubscribe(ws.data), true);
        assert.equal(ws.isSubscribed(ws.data), false);
        ws.send('left');
      } else {
        ws.send(String(ws.publish(ws.data, m)));
      }
    },
  }));
  const a = await connect(url + '/pub/news');
  const b = await connect(url + '/pub/news');
  const c = await connect(url + '/pub/news');
  const other = await connect(url + '/pub/sport');
  let otherHeard = 0;
  other.on('message', () => otherHeard++);
  await until(() => sockets.length === 4);
  const pb = nextMessage(b);
  const pc = nextMessage(c);
  const pa = nextMessage(a);
  a.send('hello');
  assert.equal((await pa)[0].toString(), '2');  // sent to 2 others
  assert.equal((await pb)[0].toString(), 'hello');
  assert.equal((await pc)[0].toString(), 'hello');
  // app.publish from a timer reaches every subscriber, binary as binary.
  const all = [a, b, c].map(nextMessage);
  let count;
  setTimeout(() => { count = app.publish('news', Buffer.from([1, 2])); }, 5);
  for (const [d, isBinary] of await Promise.all(all)) {
    assert.deepEqual([...d], [1, 2]);
    assert.equal(isBinary, true);
  }
  assert.equal(count, 3);
  // Unsubscribed: no more messages.
  c.send('leave');
  assert.equal((await nextMessage(c))[0].toString(), 'left');
  assert.equal(app.publish('news', 'after leave'), 2);
  let cHeard = 0;
  c.on('message', () => cHeard++);
  await Promise.all([nextMessage(a), nextMessage(b)]);
  await sleep(50);
  assert.equal(cHeard, 0);
  assert.equal(otherHeard, 0);
  assert.throws(() => app.publish(42, 'x'), TypeError);
  assert.throws(() => app.publish('news', { not: 'bytes' }), TypeError);
  assert.throws(() => app.publish('news', Buffer.from([0xff]), false), /UTF-8/);
  for (const s of [a, b, c, other]) s.close();
  await app.close();
  await noLeak();
});

test('backpressure: a client that never reads gets -1 then 0 from send; drain fires once it reads', async () => {
  let ws;
  let drains = 0;
  const { app } = await serve((a) => a.ws('/bp', {
    maxBackpressure: 256 * 1024,
    open(s) { ws = s; },
    drain() { drains++; },
  }));
  const raw = await new RawWs(app.port, '/bp', { read: false }).open();
  await until(() => ws !== undefined);
  const chunk = Buffer.alloc(16 * 1024, 7);
  const results = [];
  // Bounded: the kernel's buffers take a few MiB at most before the core holds bytes.
  for (let i = 0; i < 4000; i++) {
    const r = ws.send(chunk);
    results.push(r);
    if (r === 0) break;
    if (i % 64 === 63) await sleep(1);  // let the core write what the kernel takes
  }
  assert.equal(results[results.length - 1], 0, `never dropped: ${results.length} sends`);
  assert.ok(results.includes(-1), 'queued (-1) before dropped (0)');
  assert.ok(results.indexOf(-1) < results.indexOf(0));
  assert.ok(ws.getBufferedAmount() > 128 * 1024, `buffered ${ws.getBufferedAmount()}`);
  assert.equal(drains, 0);
  raw.resume();  // the client reads at last
  await until(() => drains >= 1, 10000, 'drain');
  assert.ok(ws.getBufferedAmount() <= 128 * 1024);
  assert.ok(ws.send(chunk) > 0);
  raw.destroy();
  await until(() => ws.readyState === 3);
  await app.close();
  await noLeak();
});

test('closeOnBackpressureLimit: a send over the limit closes the socket (1008)', async () => {
  let ws;
  let code;
  const { app } = await serve((a) => a.ws('/bp', {
    maxBackpressure: 64 * 1024,
    closeOnBackpressureLimit: true,
    open(s) { ws = s; },
    close(s, c) { code = c; },
  }));
  const raw = await new RawWs(app.port, '/bp', { read: false }).open();
  await until(() => ws !== undefined);
  let last;
  for (let i = 0; i < 4000 && ws.readyState === 1; i++) {
    last = ws.send(Buffer.alloc(16 * 1024));
    if (i % 64 === 63) await sleep(1);
  }
  assert.equal(last, 0);
  assert.notEqual(ws.readyState, 1);
  raw.destroy();
  await until(() => code !== undefined);
  assert.ok(code === 1008 || code === 1006, `code ${code}`);
  await app.close();
  await noLeak();
});

test('aborts at every phase: before the accept, during a send, during a publish', async () => {
  let pendingCtx;
  const opened = [];
  const slowOpened = [];
  const closes = [];
  const { app, url } = await serve((a) => {
    a.ws('/slow', {
      upgrade(req, ctx) { pendingCtx = ctx; return ctx; },
      open(ws) { slowOpened.push(ws); },
    });
    a.ws('/send', {
      open(ws) { opened.push(ws); },
      message(ws) {
        // Sends while the client goes away under them.
        for (let i = 0; i < 200; i++) ws.send(Buffer.alloc(64 * 1024));
      },
      close(ws, code) { closes.push(code); },
    });
    a.ws('/pub', {
      open(ws) { ws.subscribe('all'); opened.push(ws); },
      close(ws, code) { closes.push(code); },
    });
  });
  // Before the accept: the client leaves; the late accept says so and nothing opens.
  const raw = await new RawWs(app.port, '/slow');
  await raw.ready;
  raw.handshake();
  await until(() => pendingCtx !== undefined);
  raw.destroy();
  // The core tells (on_upgrade_gone): the context is decided, the late accept
  // says false, nothing opens and nothing is held.
  await until(() => pendingCtx.decided, 3000, 'the upgrade told its client left');
  assert.equal(quicklane._liveHandles().requests, 0);
  assert.equal(pendingCtx.accept({ data: 'late' }), false);
  assert.equal(quicklane._liveHandles().pendingAccepts, 0);
  assert.deepEqual(slowOpened, []);
  // Refused late.
  pendingCtx = undefined;
  const raw2 = new RawWs(app.port, '/slow');
  await raw2.ready;
  raw2.handshake();
  await until(() => pendingCtx !== undefined);
  raw2.destroy();
  await until(() => pendingCtx.decided, 3000, 'the upgrade told its client left');
  assert.equal(pendingCtx.refuse(403), false);
  assert.equal(quicklane._liveHandles().requests, 0);

  // During a send: the client is cut while megabytes go to it.
  const s = await connect(url + '/send');
  s.send('go');
  await sleep(5);
  s.terminate();
  await until(() => closes.length === 1);
  assert.equal(closes[0], 1006);
  opened.length = 0;

  // During a publish: subscribers leave while a timer publishes to them.
  const subs = [];
  for (let i = 0; i < 20; i++) subs.push(await connect(url + '/pub'));
  await until(() => opened.length === 20);
  let published = 0;
  const timer = setInterval(() => { published += app.publish('all', Buffer.alloc(32 * 1024)); }, 1);
  for (const c of subs) {
    c.terminate();
    await sleep(1);
  }
  await until(() => closes.length === 21);
  clearInterval(timer);
  assert.ok(published > 0);
  assert.equal(app.publish('all', 'nobody left'), 0);
  await app.close();
  await noLeak();
});

test('a callback that throws (or rejects) closes its socket with 1011; the server goes on', async () => {
  const errors = [];
  const origError = console.error;
  console.error = (...a) => errors.push(a.map(String).join(' '));
  let closeCalls = 0;
  try {
    const { app, url } = await serve((a) => a.ws('/t', {
      open(ws, req) { if (req.query.open) throw new Error('open failed'); },
      message(ws, m) {
        if (m === 'sync') throw new Error('sync failure');
        if (m === 'async') return Promise.reject(new Error('async failure'));
        ws.send('ok');
        return undefined;
      },
      close() { closeCalls++; throw new Error('close failure'); },
    }));
    for (const [q, send, what] of [['', 'sync', 'sync failure'], ['', 'async', 'async failure'], ['?open=1', null, 'open failed']]) {
      const c = await connect(url + '/t' + q);
      if (send) c.send(send);
      const [code, reason] = await closed(c);
      assert.equal(code, 1011);
      assert.equal(reason.toString(), 'internal error');
      assert.ok(errors.some((l) => l.includes(what)), errors.join('\n'));
    }
    await until(() => closeCalls === 3);
    assert.ok(errors.some((l) => l.includes('close failure')));
    const c = await connect(url + '/t');
    c.send('fine');
    assert.equal((await nextMessage(c))[0].toString(), 'ok');
    c.close();
    await closed(c);
    await app.close();
  } finally {
    console.error = origError;
  }
  await noLeak();
});

test('ping and pong callbacks; server pings keep a quiet client', async () => {
  const pings = [];
  const pongs = [];
  const { app, url } = await serve((a) => a.ws('/p', {
    ping(ws, data) { pings.push(data.toString()); },
    pong(ws, data) { pongs.push(data.toString()); },
  }));
  const c = await connect(url + '/p');
  const pong = new Promise((r) => c.once('pong', (d) => r(d.toString())));
  c.ping('are you there');
  assert.equal(await pong, 'are you there');  // the core answers
  c.pong('unsolicited');
  await until(() => pings.length === 1 && pongs.length === 1);
  assert.deepEqual([pings, pongs], [['are you there'], ['unsolicited']]);
  c.close();
  await closed(c);
  await app.close();
  await noLeak();
});

test('pings and pongs from JS: ws.ping(data) and ws.pong(data) return send numbers, in order with messages', async () => {
  const pongs = [];
  let server;
  const { app, url } = await serve((a) => a.ws('/hb', {
    open(ws) { server = ws; },
    pong(ws, data) { pongs.push(data.toString()); },
  }));
  const c = await connect(url + '/hb');
  await until(() => server !== undefined);
  const got = [];
  c.on('ping', (d) => got.push(['ping', d.toString()]));
  c.on('pong', (d) => got.push(['pong', d.toString()]));
  c.on('message', (d) => got.push(['message', d.toString()]));
  assert.equal(server.send('one'), 3);
  assert.equal(server.ping('hb-1'), 4);
  assert.equal(server.send('two'), 3);
  assert.equal(server.pong(Buffer.from('unsolicited')), 11);
  assert.equal(server.ping(), 1);  // an empty ping: at least 1, as send
  assert.equal(server.ping(new Uint8Array(125)), 125);
  await until(() => got.length === 6 && pongs.length === 3, 5000, 'the frames and the client pongs');
  assert.deepEqual(got.slice(0, 5), [['message', 'one'], ['ping', 'hb-1'], ['message', 'two'],
    ['pong', 'unsolicited'], ['ping', '']]);
  assert.deepEqual(pongs.slice(0, 2), ['hb-1', '']);  // ws answers each ping with its data
  assert.throws(() => server.ping('x'.repeat(126)), RangeError);
  c.close();
  await closed(c);
  assert.equal(server.ping('late'), 0);
  assert.equal(server.pong(), 0);
  await app.close();
  await noLeak();
});

test('an async upgrade whose client leaves: req.signal fires, ctx.decided, the late accept is false, nothing held', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const seen = {};
  let opened = 0;
  const { app } = await serve((a) => a.ws('/later', {
    async upgrade(req, ctx) {
      seen.started = true;
      const aborted = new Promise((r) => req.signal.addEventListener('abort', () => r(true)));
      seen.aborted = await Promise.race([aborted, gate]);
      seen.decided = ctx.decided;
      seen.reqAborted = req.aborted;
      seen.path = req.path;  // still readable: kept when the client left
      seen.header = req.header('sec-websocket-version');
      seen.accepted = ctx.accept({ data: { big: Buffer.alloc(1024) } });
      return ctx;
    },
    open() { opened++; },
  }));
  const raw = new RawWs(app.port, '/later?x=1');
  await raw.ready;
  raw.handshake();
  await until(() => seen.started);
  assert.equal(quicklane._liveHandles().requests, 1);
  raw.destroy();
  await until(() => seen.accepted !== undefined, 5000, 'the upgrade to learn its client left');
  assert.deepEqual(seen, { started: true, aborted: true, decided: true, reqAborted: true, path: '/later',
    header: '13', accepted: false });
  // Released at once: no request slot, no pending accept data, no sweep.
  assert.deepEqual(quicklane._liveHandles(), { webSockets: 0, requests: 0, sockets: 0, pendingAccepts: 0 });
  release(false);
  assert.equal(opened, 0);
  await app.close();
  await noLeak();
});

test('app.close() closes open sockets with 1001 and tells every close', async () => {
  let closes = 0;
  const { app, url } = await serve((a) => a.ws('/s', { close() { closes++; } }));
  const cs = [];
  for (let i = 0; i < 5; i++) cs.push(await connect(url + '/s'));
  const codes = Promise.all(cs.map(closed));
  await app.close(2000);
  assert.deepEqual((await codes).map((x) => x[0]), [1001, 1001, 1001, 1001, 1001]);
  assert.equal(closes, 5);
  await noLeak();
});

test('bad options and calls are refused with clear errors', async () => {
  const app = quicklane.app();
  assert.throws(() => app.ws('/x', null), TypeError);
  assert.throws(() => app.ws('/x', { message: 'no' }), /message handler must be a function/);
  assert.throws(() => app.ws('/x', { idleTimeout: 0.5 }), RangeError);
  assert.throws(() => app.ws('/x', { maxBackpressure: -1 }), RangeError);
  assert.throws(() => app.ws('/x', { maxPayloadLength: 0 }), RangeError);
  assert.throws(() => app.ws('/x', { compression: 'zip' }), RangeError);
  assert.throws(() => app.ws('/x', { compressionWindowBits: 20 }), RangeError);
  assert.throws(() => app.ws('/x', { pingInterval: 10 }), RangeError);
  assert.throws(() => app.ws('x', {}), TypeError);
  app.ws('/x', {});
  assert.throws(() => app.ws('/x', {}), /conflict|already/i);
  await app.listen({ port: 0 });
  assert.throws(() => app.ws('/y', {}), /before listen/);
  let ws;
  await app.close();
  const app2 = quicklane.app();
  app2.ws('/z', { open(s) { ws = s; } });
  await app2.listen({ port: 0 });
  const c = await connect(`ws://127.0.0.1:${app2.port}/z`);
  await until(() => ws !== undefined);
  assert.throws(() => ws.send(123), TypeError);
  assert.throws(() => ws.send(Buffer.from([0xc3, 0x28]), false), /UTF-8/);
  assert.throws(() => ws.subscribe(5), TypeError);
  assert.throws(() => ws.sendText(Buffer.from('x')), TypeError);
  assert.throws(() => ws.ping(Buffer.alloc(126)), RangeError);
  assert.throws(() => ws.pong('x'.repeat(126)), RangeError);
  assert.throws(() => ws.ping({}), TypeError);
  assert.equal(ws.readyState, 1);
  c.close();
  await closed(c);
  await app2.close();
  await noLeak();
});

test('compression (permessage-deflate) and limits: a message over maxPayloadLength closes with 1009', async () => {
  const { app, url } = await serve((a) => a.ws('/z', {
    compression: 'shared',
    maxPayloadLength: 1024,
    message(ws, m, isBinary) { ws.send(m, isBinary); },
  }));
  const c = await connect(url + '/z', undefined, { perMessageDeflate: true });
  assert.match(c.extensions, /permessage-deflate/);
  c.send('a'.repeat(1000));
  assert.equal((await nextMessage(c))[0].toString(), 'a'.repeat(1000));
  c.send(Buffer.alloc(2000));
  const [code] = await closed(c);
  assert.equal(code, 1009);
  await app.close();
  await noLeak();
});

test('2000 sockets at once: each echoes, all close, nothing is left', { timeout: 120000 }, async () => {
  let open = 0;
  let maxOpen = 0;
  const { app, url } = await serve((a) => a.ws('/many/:i', {
    open(ws, req) { ws.data = req.params.i; open++; maxOpen = Math.max(maxOpen, open); ws.subscribe('many'); },
    message(ws, m) { ws.send(`${ws.data}:${m}`); },
    close() { open--; },
  }), { maxConnections: 5000 });
  const N = 2000;
  const clients = [];
  for (let i = 0; i < N; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 200); j++) batch.push(connect(`${url}/many/${j}`));
    clients.push(...await Promise.all(batch));
  }
  await until(() => open === N, 20000, 'every socket open');
  const echoes = clients.map((c, i) => nextMessage(c).then(([d]) => assert.equal(d.toString(), `${i}:m`)));
  clients.forEach((c) => c.send('m'));
  await Promise.all(echoes);
  const fanout = clients.map(nextMessage);
  assert.equal(app.publish('many', 'to all'), N);
  for (const [d] of await Promise.all(fanout)) assert.equal(d.toString(), 'to all');
  assert.equal(quicklane._liveHandles().webSockets, N);
  clients.forEach((c, i) => (i % 2 ? c.close() : c.terminate()));
  await until(() => open === 0, 20000, 'every socket closed');
  assert.equal(maxOpen, N);
  await app.close();
  await noLeak();
});

test('process.exit() and a worker_thread ending with WebSockets open', { timeout: 60000 }, () => {
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  const fixture = path.join(__dirname, 'fixtures', 'ws-exit.js');
  let r = spawnSync(process.execPath, [fixture], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'exiting');
  r = spawnSync(process.execPath, [fixture, 'worker'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'worker ended; client closed 1001');
  assert.doesNotMatch(r.stderr, /no JS at teardown/);
});

test('idleTimeout closes a silent client (1001); automatic pings keep one that answers', { timeout: 30000 }, async () => {
  const { app, url } = await serve((a) => {
    a.ws('/quiet', { idleTimeout: 1, sendPingsAutomatically: false });
    a.ws('/pinged', { idleTimeout: 2 });  // pings at half the idle timeout; ws answers them
  });
  const quiet = await connect(url + '/quiet');
  const pinged = await connect(url + '/pinged');
  let pings = 0;
  pinged.on('ping', () => pings++);
  const [code] = await closed(quiet);
  assert.equal(code, 1001);
  await until(() => pings >= 2, 10000, 'two server pings');
  assert.equal(pinged.readyState, WS.OPEN);
  pinged.close();
  await closed(pinged);
  await app.close();
  await noLeak();
});
