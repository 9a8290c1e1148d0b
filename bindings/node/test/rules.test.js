'use strict';
// Native rules declared from JS: answered in the core, the handler never runs.
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');
const { request, get } = require('./helpers');

test('rate limit, API key, CORS and metrics from JS', async () => {
  const app = quicklane.app();
  let calls = 0;
  app.get('/limited', { rateLimit: { max: 5, timeWindow: 60000 } }, () => { calls++; return 'ok'; });
  app.route({ method: 'GET', url: '/private', apiKey: true, handler: async () => { calls++; return { private: true }; } });
  app.static('GET', '/ping', { message: 'pong' });
  app.apiKeys(['secret-key']);
  app.cors({ origin: ['https://app.example'], methods: ['GET', 'POST'] });
  app.metrics('/metrics');
  await app.listen({ host: '127.0.0.1', port: 0, workers: 1 });
  try {
    const codes = [];
    for (let i = 0; i < 6; i++) codes.push((await request(app.port, get('/limited'))).status);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429]);
    const limited = await request(app.port, get('/limited'));
    assert.equal(limited.headers['retry-after'], '12');
    assert.equal((await request(app.port, get('/private'))).status, 401);
    assert.equal((await request(app.port, get('/private', 'X-API-Key: wrong\r\n'))).status, 403);
    const ok = await request(app.port, get('/private', 'X-API-Key: secret-key\r\n'));
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body), { private: true });
    assert.equal(calls, 6);
    const pre = await request(app.port, 'OPTIONS /private HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n' +
      'Access-Control-Request-Method: GET\r\n\r\n');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    const foreign = await request(app.port, get('/ping', 'Origin: https://evil.example\r\n'));
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
    const m = (await request(app.port, get('/metrics'))).body.toString();
    assert.match(m, /quicklane_requests_total\{method="GET",route="\/limited",status="429"\} 2/);
    assert.match(m, /quicklane_requests_host_total 6/);
  } finally {
    await app.close();
  }
});

test('cache from JS: the handler runs once per key per TTL', async () => {
  const app = quicklane.app();
  let calls = 0;
  app.get('/cached/:key', { cache: { ttl: 60000 } }, (req) => ({ key: req.params.key, calls: ++calls }));
  await app.listen({ host: '127.0.0.1', port: 0, workers: 1 });
  try {
    const first = await request(app.port, get('/cached/a'));
    assert.deepEqual(JSON.parse(first.body), { key: 'a', calls: 1 });
    const hit = await request(app.port, get('/cached/a'));
    assert.deepEqual(JSON.parse(hit.body), { key: 'a', calls: 1 });
    assert.equal(hit.headers.age, '0');
    assert.equal(hit.headers['cache-control'], 'max-age=60');
    assert.deepEqual(JSON.parse((await request(app.port, get('/cached/b'))).body), { key: 'b', calls: 2 });
  } finally {
    await app.close();
  }
});

test('bad rules are refused with the core message', async () => {
  assert.throws(() => quicklane.app().cors({ origin: '*', credentials: true }), /credentials/);
  assert.throws(() => quicklane.app().get('/x', { rateLimit: { max: -1 } }, () => 'x'), /rateLimit.max/);
  const app = quicklane.app();
  app.get('/private', { apiKey: true }, () => 'x');
  await assert.rejects(app.listen({ host: '127.0.0.1', port: 0 }), /requires an API key/);
});

test('validation from a Fastify-style schema: 422 natively in FastAPI\'s shape', async () => {
  const app = quicklane.app();
  let calls = 0;
  app.post('/items', {
    schema: {
      body: {
        type: 'object', additionalProperties: false, required: ['name', 'price'],
        properties: { name: { type: 'string', minLength: 1 }, price: { type: 'number', minimum: 0 }, tags: { type: 'array', items: { type: 'string' } } },
      },
    },
  }, (req) => { calls++; return req.json(); });
  app.get('/items/:id', {
    schema: {
      params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } },
      querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 100 } } },
    },
  }, (req) => { calls++; return { id: Number(req.params.id) }; });
  await app.listen({ host: '127.0.0.1', port: 0, workers: 1 });
  try {
    const { post } = require('./helpers');
    assert.equal((await request(app.port, post('/items', '{"name":"x","price":2}'))).status, 200);
    const bad = await request(app.port, post('/items', '{"name":"","price":"2"}'));
    assert.equal(bad.status, 422);
    const locs = JSON.parse(bad.body).detail.map((e) => e.loc.join('.'));
    assert.ok(locs.includes('body.name') && locs.includes('body.price'), locs.join());
    assert.equal((await request(app.port, post('/items', '{"name":'))).status, 400);
    const q = await request(app.port, get('/items/0?limit=1000'));
    assert.equal(q.status, 422);
    assert.deepEqual(JSON.parse(q.body).detail.map((e) => e.loc), [['path', 'id'], ['query', 'limit']]);
    assert.equal((await request(app.port, get('/items/3'))).status, 200);
    assert.equal(calls, 2);
  } finally {
    await app.close();
  }
});
