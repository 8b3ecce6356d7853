// ESM entry of deltacast/query: the module body on the ES module build of @tanstack/query-core, the
// one an app's own `import` gets (one copy of TanStack Query, not the CommonJS one beside it).
import { replaceEqualDeep } from '@tanstack/query-core';
import make from './query_body.js';

const m = make({ replaceEqualDeep });
export default m;
export const { bindQueryClient, optimisticUpdate, realtimeQueryOptions, fetchTopic } = m;
