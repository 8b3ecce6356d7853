export * from './socket.io.js';
export { default } from './socket.io.js';
