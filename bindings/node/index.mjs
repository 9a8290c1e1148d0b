// ESM entry point: the same module as the CommonJS one.
import quicklane from './index.js';

export const { app, App, Request, StreamRequest, Reply, ReplyStream, EventStream, sse, version, abiVersion, features } = quicklane;
export default quicklane;
