// ESM entry of deltacast/query: the same objects as the CommonJS lib/browser/query.js.
import m from './query.js';

export default m;
export const { bindQueryClient, optimisticUpdate, realtimeQueryOptions, fetchTopic } = m;
