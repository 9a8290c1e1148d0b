#!/usr/bin/env node
// WebSocket peer of bench/run on the `ws` npm library (its defaults: no
// permessage-deflate on the server side): the WebSocket part of the example
// contract on a plain node:http server, 127.0.0.1:$PORT.
//   GET /ws/echo         each message sent back as it came (text as text, binary as binary)
//   GET /ws/chat/{room}  each message published to every member of the room, sender
//                        included, as {"room":…,"from":n,"text":…}; n = the sender's
//                        member number in the room, from 1 in order of joining
//   GET /ping            {"message":"pong"} (bench/run's start-up check)
'use strict';
const http = require('node:http');
const { WebSocketServer, WebSocket } = require('ws');

const PING = Buffer.from('{"message":"pong"}');
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/ping') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': PING.length });
    res.end(PING);
  } else {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"detail":"Not Found"}');
  }
});
server.keepAliveTimeout = 0;

const wss = new WebSocketServer({ noServer: true });
const rooms = new Map(); // room name -> { next: member number to give, members: Set of sockets }

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function chat(ws, name) {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { next: 1, members: new Set() }));
  const from = room.next++;
  room.members.add(ws);
  ws.on('message', (data) => {
    const out = JSON.stringify({ room: name, from, text: data.toString() });
    for (const m of room.members) if (m.readyState === WebSocket.OPEN) m.send(out);
  });
  ws.on('close', () => {
    room.members.delete(ws);
    if (room.members.size === 0 && rooms.get(name) === room) rooms.delete(name);
  });
}

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  let room = null;
  if (path.startsWith('/ws/chat/') && path.length > 9 && path.indexOf('/', 9) < 0) {
    try { room = decodeURIComponent(path.slice(9)); } catch { room = null; }
  }
  if (path !== '/ws/echo' && room === null) {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 22\r\n\r\n{"detail":"Not Found"}');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => (room === null ? echo(ws) : chat(ws, room)));
});

const port = Number(process.env.PORT || 8080);
server.listen(port, '127.0.0.1', () => console.log(`ws on 127.0.0.1:${port}`));
const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
