'use strict';
// Issue 23: typed parameters of a route's schema reach the handler typed, as Fastify's coerceTypes
// does — what the core validated (its grammar: 1_000, yes/on/1 for true) is what req.query and
// req.params hold. Untyped parameters stay strings.
const test = require('node:test');
const assert = require('node:assert/strict');
const quicklane = require('..');

test('req.query and req.params are coerced to the schema types the core validated', async () => {
  const app = quicklane.app();
  const schema = {
    params: { type: 'object', properties: { id: { type: 'integer' } } },
    querystring: {
      type: 'object',
      properties: { limit: { type: 'integer' }, ratio: { type: 'number' }, active: { type: 'boolean' },
        name: { type: 'string' } },
    },
  };
  app.get('/items/:id', { schema }, (req) => ({ params: req.params, query: req.query }));
  const base = await app.listen({ host: '127.0.0.1', port: 0, workers: 1 });
  try {
    let res = await fetch(`${base}/items/7?limit=1_000&ratio=2.5&active=yes&name=42&other=1`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      params: { id: 7 }, query: { limit: 1000, ratio: 2.5, active: true, name: '42', other: '1' },
    });
    res = await fetch(`${base}/items/8?active=off&limit=3&limit=4`);
    assert.deepEqual(await res.json(), { params: { id: 8 }, query: { active: false, limit: [3, 4] } });
    res = await fetch(`${base}/items/8?active=maybe`);  // refused natively: the handler never sees it
    assert.equal(res.status, 422);
  } finally {
    await app.close();
  }
});
