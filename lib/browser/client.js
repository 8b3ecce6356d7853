'use strict';
// deltacast/client: createClient with all four carriers (WebSocket, Socket.IO, SSE, long-polling).
// core.js with the ws, SSE and poll carriers alone is what the size budget measures.

const core = require('./core.js');
const { carriers } = require('./carriers.js');
const { socketIOCarrier } = require('./socket_io.js');

carriers['socket.io'] = socketIOCarrier;

module.exports = core;
