// ESM entry point of deltacast/redis: the same objects as the CommonJS one.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const redis = require('./redis.js');

export const { redisEngine, RedisEngine } = redis;
export default redis;
