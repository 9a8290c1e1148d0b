// ESM entry point: the same module as the CommonJS one.
import quicklane from './index.js';

export const { app, App, Request, StreamRequest, Reply, ReplyStream, EventStream, sse, version, abiVersion, features,
  ServerWebSocket, UpgradeContext, UpgradeRequest, WebSocket, WebSocketServer, DISABLED, SHARED_COMPRESSOR,
  DEDICATED_COMPRESSOR } = quicklane;
export default quicklane;
