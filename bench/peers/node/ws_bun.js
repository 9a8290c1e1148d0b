// WebSocket peer of bench/run on Bun's own server (Bun.serve's `websocket`
// handlers, uWebSockets underneath; run with the `bun` binary of the npm
// package `bun`, bench/out/peers-node/node_modules/.bin/bun). Bun's defaults:
// no permessage-deflate, 16 MiB backpressure limit. The WebSocket part of the
// example contract on 127.0.0.1:$PORT:
//   GET /ws/echo         each message sent back as it came (text as text, binary as binary)
//   GET /ws/chat/{room}  each message published to every member of the room, sender
//                        included (server.publish: ws.publish would skip the sender), as
//                        {"room":…,"from":n,"text":…}; n = the sender's member number in the
//                        room, from 1 in order of joining
//   GET /ping            {"message":"pong"} (bench/run's start-up check)
'use strict';

const PING = '{"message":"pong"}';
const rooms = new Map(); // room name -> { next: member number to give, members: count }
const decoder = new TextDecoder();

function roomOf(path) {
  if (path.startsWith('/ws/chat/') && path.length > 9 && path.indexOf('/', 9) < 0) {
    try { return decodeURIComponent(path.slice(9)); } catch { return null; }
  }
  return null;
}

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.env.PORT || 8080),
  fetch(req, srv) {
    const url = new URL(req.url);
    const path = url.pathname;
    if (req.method === 'GET' && path === '/ping') {
      return new Response(PING, { headers: { 'content-type': 'application/json' } });
    }
    const room = roomOf(path);
    if (path === '/ws/echo' || room !== null) {
      if (srv.upgrade(req, { data: { room, from: 0 } })) return undefined;
      return new Response('{"detail":"WebSocket upgrade expected"}', {
        status: 426, headers: { 'content-type': 'application/json' },
      });
    }
    return new Response('{"detail":"Not Found"}', { status: 404, headers: { 'content-type': 'application/json' } });
  },
  websocket: {
    perMessageDeflate: false,
    open(ws) {
      const name = ws.data.room;
      if (name === null) return;
      let room = rooms.get(name);
      if (!room) rooms.set(name, (room = { next: 1, members: 0 }));
      ws.data.from = room.next++;
      room.members++;
      ws.subscribe('room:' + name);
    },
    message(ws, message) {
      const name = ws.data.room;
      if (name === null) {
        ws.send(message); // a string goes as text, a Buffer as binary
        return;
      }
      const text = typeof message === 'string' ? message : decoder.decode(message);
      server.publish('room:' + name, JSON.stringify({ room: name, from: ws.data.from, text }));
    },
    close(ws) {
      const name = ws.data.room;
      if (name === null) return;
      const room = rooms.get(name);
      if (room && --room.members === 0) rooms.delete(name);
    },
  },
});
console.log(`bun ${Bun.version} on 127.0.0.1:${server.port}`);

const stop = () => {
  server.stop(true);
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
