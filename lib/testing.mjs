import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const testing = require('./testing.js');

export const { createTestClient, TestClient, settle, tick } = testing;
export default testing;
