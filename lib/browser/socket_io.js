'use strict';
// The Socket.IO carrier: each protocol message is the single argument of the event `deltacast`,
// as a plain object. `io` (from socket.io-client, an optional peer dependency) is passed in the
// client's options; its own reconnection is off, the client's backoff and fallback decide.

const { duplex, fail } = require('./carriers.js');

function socketIOCarrier(o, ctx) {
  if (!o.io) throw fail('the socket.io carrier needs options.io');
  const s = o.io(o.url, { transports: ['websocket'], reconnection: false, forceNew: true, ...o.ioOptions });
  const d = duplex('socket.io', ctx, (m) => s.emit('deltacast', m), () => s.disconnect());
  s.on('connect', d.open);
  s.on('deltacast', d.msg);
  // (reason, details): details is an object, not a close code; the status event's `code` is a WebSocket close code or absent
  s.on('disconnect', (reason) => d.end(reason));
  s.on('connect_error', (e) => d.end(e && e.message));
  return d.c;
}

module.exports = { socketIOCarrier };
