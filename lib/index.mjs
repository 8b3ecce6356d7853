// ESM entry point: the same objects as the CommonJS one.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const deltacast = require('./index.js');

export const { createHub, diff, diffJson, diffJsonAsync, applyPatch, applyPatchJson, jsonEqual, DeltacastError, codes } = deltacast;
export default deltacast;
