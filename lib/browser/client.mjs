// ESM entry of deltacast/client: the same objects as the CommonJS lib/browser/client.js.
import m from './client.js';

export default m;
export const { createClient } = m;
