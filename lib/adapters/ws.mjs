// ESM entry point of deltacast/ws: the same objects as the CommonJS one.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const adapter = require('./ws.js');

export const { attachWebSocketServer, codes } = adapter;
export default adapter;
