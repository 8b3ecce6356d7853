// ESM entry point of deltacast/socket.io: the same objects as the CommonJS one.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const adapter = require('./socket.io.js');

export const { attachSocketIO, codes } = adapter;
export default adapter;
