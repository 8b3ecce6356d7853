import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const http = require('./http.js');

export const { httpHandler, pollingHandler, httpCodes } = http;
export default http;
