// ESM entry of deltacast/react: the same objects as the CommonJS lib/browser/react.js.
import m from './react.js';

export default m;
export const { RealtimeProvider, useRealtimeQuery, useConnectionStatus, useRealtimeEvents, RealtimeContext } = m;
