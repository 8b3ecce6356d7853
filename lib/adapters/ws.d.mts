export * from './ws.js';
export { default } from './ws.js';
