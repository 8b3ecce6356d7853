// ESM entry of deltacast/react: the module body on the ES modules an app's own `import` gets
// (React, @tanstack/react-query, deltacast/query), so there is one QueryClient context, not two.
import * as React from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import query from './query.mjs';
import make from './react_body.js';

const m = make(React, { useQuery, useQueryClient }, query);
export default m;
export const { RealtimeProvider, useRealtimeQuery, useConnectionStatus, useRealtimeEvents, RealtimeContext } = m;
