'use strict';
// deltacast/socket.io: attachSocketIO(ioOrNamespace, hub, options?)
//
// Thin: each socket of the namespace gets one hub connection. Messages of the
// protocol event go to connection.receive; frames from the hub go out as
// that event's single argument; a full engine.io write buffer is send() ->
// false, its 'drain' is connection.drained(); a disconnect closes the
// connection. Rooms, middlewares and the app's own events are not touched.
//
// Encode once. socket.emit() would encode the packet again for every socket
// (and a frame passed as a string would be escaped again, arriving as a
// string). Instead the Socket.IO packet text of a frame is built once,
//   2["deltacast",<frame>]      or   2/ns,["deltacast",<frame>]
// exactly as socket.io-parser encodes an EVENT whose argument is the frame's
// object, so the client decodes a plain object; and that same string, with
// the same options object, is written to every socket's engine.io
// connection, as socket.io's own broadcast (socket.io-adapter's
// InMemoryAdapter.broadcast) does. Socket.IO internals used, all present in
// socket.io 4.8 / engine.io 6.6 (the versions in package.json, tested):
//   - socket.client.writeToEngine(encodedPackets, { preEncoded: true, wsPreEncodedFrame })
//     (what the adapter's broadcast calls; it hands each packet to conn.write)
//   - wsPreEncodedFrame: the engine.io WebSocket transport writes these
//     buffers (ws's Sender.frame of "4" + packet) as is, when permessage-deflate
//     is off; the polling transport ignores it and uses the packet text
//   - socket.client.conn: writeBuffer (packets not yet handed to the transport),
//     readyState, and its 'drain' event (emitted when writeBuffer is flushed)
// When these are missing (another Socket.IO version), frames go out through
// socket.emit(event, JSON.parse(frame)) and no congestion is reported, with
// one process warning (code DELTACAST_SOCKETIO_INTERNALS).
// Bypassing socket.emit also bypasses onAnyOutgoing listeners and Socket.IO's
// connection-state recovery buffer for these packets: deltacast resumes by
// (epoch, version) on its own.

const { codes } = require('../errors');
const {
  adapterCodes,
  checkOptions,
  positiveInteger,
  checkHub,
  invalid,
  Refusal,
  checkIdentity,
  resolveIdentity,
  errFrame,
  RefusedMessage,
  clip,
  FrameCache,
  Inbound,
  warnOnce,
  retryFrame,
  identityHook,
  refreshHook,
  checkAuthenticate,
  auditRefusal,
} = require('./shared');

/** Socket.IO's handshake token: `io(url, { auth: { token } })`. */
const handshakeToken = (socket) => {
  const token = socket?.handshake?.auth?.token;
  return typeof token === 'string' && token !== '' ? token : undefined;
};

const DEFAULT_EVENT = 'deltacast';
const DEFAULT_MAX_BUFFERED_PACKETS = 64;

// ws's frame encoder (ws is socket.io-adapter's and engine.io's dependency):
// frames a packet once for every WebSocket-transport socket. Absent: engine.io
// frames it per socket, the bytes are the same.
let wsFrameEncoder;
function frameEncoder() {
  if (wsFrameEncoder === undefined) {
    wsFrameEncoder = null;
    try {
      const Sender = require('ws').Sender;
      if (typeof Sender?.frame === 'function') wsFrameEncoder = Sender.frame;
    } catch {
      // not resolvable from here: engine.io encodes per socket
    }
  }
  return wsFrameEncoder;
}

function namespaceOf(ioOrNamespace) {
  if (ioOrNamespace !== null && typeof ioOrNamespace === 'object') {
    // a Server: its main namespace
    if (typeof ioOrNamespace.of === 'function' && ioOrNamespace.sockets && typeof ioOrNamespace.sockets.use === 'function') {
      return ioOrNamespace.sockets;
    }
    // a Namespace
    if (typeof ioOrNamespace.use === 'function' && typeof ioOrNamespace.name === 'string' && typeof ioOrNamespace.on === 'function') {
      return ioOrNamespace;
    }
  }
  throw invalid('attachSocketIO takes a Socket.IO Server or Namespace as its first argument');
}

function isBinary(value) {
  return value instanceof ArrayBuffer || ArrayBuffer.isView(value);
}

/** Whether this socket exposes the internals the encode-once path writes through. */
function hasEngineInternals(socket) {
  const client = socket.client;
  const conn = client?.conn;
  return (
    typeof client?.writeToEngine === 'function' &&
    conn !== null &&
    typeof conn === 'object' &&
    Array.isArray(conn.writeBuffer) &&
    typeof conn.readyState === 'string' &&
    typeof conn.once === 'function'
  );
}

function attachSocketIO(ioOrNamespace, hub, options) {
  const nsp = namespaceOf(ioOrNamespace);
  checkHub(hub);
  const retry = retryFrame(hub);
  options = checkOptions(options, ['event', 'user', 'authenticate', 'maxBufferedPackets', 'exclusive'], 'attachSocketIO');
  const event = options.event ?? DEFAULT_EVENT;
  if (typeof event !== 'string' || event === '') throw invalid('options.event must be a non-empty string');
  if (options.user !== undefined && typeof options.user !== 'function') throw invalid('options.user must be a function (socket) => identity');
  checkAuthenticate(options);
  // user(socket), or authenticate(token, socket) with socket.handshake.auth.token
  const userHook = identityHook(options, handshakeToken);
  const maxBufferedPackets = positiveInteger(options.maxBufferedPackets, DEFAULT_MAX_BUFFERED_PACKETS, 'options.maxBufferedPackets');
  if (options.exclusive !== undefined && typeof options.exclusive !== 'boolean') throw invalid('options.exclusive must be a boolean');
  const exclusive = options.exclusive ?? false;

  // The packet text of an event on a namespace, up to its argument, and the
  // packets of each frame on it: one cache per namespace name (a parent
  // namespace, io.of(/regex/), serves sockets of several child namespaces).
  const caches = new Map();
  const packetsOn = (name) => {
    let cache = caches.get(name);
    if (cache === undefined) {
      const head = `2${name === '/' ? '' : `${name},`}[${JSON.stringify(event)},`;
      cache = new FrameCache((frame) => {
        const packet = head + frame + ']';
        const opts = { preEncoded: true };
        const encode = frameEncoder();
        if (encode !== null) {
          // "4": the engine.io message packet type, as socket.io-adapter's _encode does
          // joined into one Buffer: ws's sendFrame then makes one socket.write per socket, not cork/write/write/uncork
          const list = encode(Buffer.from('4' + packet), { readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
          opts.wsPreEncodedFrame = list.length === 1 ? list : [Buffer.concat(list)];
        }
        return { packets: [packet], opts };
      });
      cache.head = head;
      caches.set(name, cache);
    }
    return cache;
  };

  const links = new Set();
  const identities = new WeakMap(); // socket -> what the user hook resolved
  const inbound = new Inbound();
  let detached = false;

  // A namespace middleware: a refused identity is a connect_error whose
  // `data` is { code, message }. Without a hook the identity is read at
  // connection time from socket.data.user, set by the app's own io.use.
  const middleware = (socket, next) => {
    if (detached || userHook === undefined) return next();
    resolveIdentity(userHook, socket).then(
      (user) => {
        identities.set(socket, user);
        next();
      },
      (refusal) => {
        auditRefusal(hub, 'socket.io', refusal);
        const err = new Error(refusal.message);
        err.data = refusal.body;
        next(err);
      },
    );
  };
  nsp.use(middleware);

  const onConnection = (socket) => {
    // not connected: an earlier 'connection' listener of the app disconnected it
    if (detached || !socket.connected) return;
    const link = new SocketLink(socket);
    link.open(userHook === undefined ? socket.data?.user : identities.get(socket), userHook === undefined);
  };
  nsp.on('connection', onConnection);

  class SocketLink {
    #socket;
    #connection = null;
    #fast;
    #conn;
    #congested = false;
    #closing = false;
    #packets;

    constructor(socket) {
      this.#socket = socket;
      this.#packets = packetsOn(typeof socket.nsp?.name === 'string' ? socket.nsp.name : nsp.name);
      this.#fast = hasEngineInternals(socket);
      this.#conn = this.#fast ? socket.client.conn : null;
      if (!this.#fast) {
        warnOnce(
          'DELTACAST_SOCKETIO_INTERNALS',
          'deltacast/socket.io: this Socket.IO version lacks socket.client.writeToEngine or conn.writeBuffer; ' +
            'frames are sent with socket.emit (encoded per socket) and congestion is not reported',
        );
      }
    }

    open(user, fromSocketData) {
      const socket = this.#socket;
      try {
        if (fromSocketData) user = checkIdentity(user, false);
        const authenticate = refreshHook(options, socket); // {"t":"auth"} refreshes
        this.#connection = hub.connect({ send: this.#send, close: this.#close, user, kind: 'socket.io', authenticate });
      } catch (err) {
        const refusal = err instanceof Refusal ? err : new Refusal(err.code ?? codes.INTERNAL, 401, err.message);
        auditRefusal(hub, 'socket.io', refusal);
        this.#write(errFrame(refusal.code, refusal.message));
        socket.disconnect(true);
        return;
      }
      links.add(this);
      socket.on(event, this.#onMessage);
      if (exclusive) socket.onAny(this.#onAny);
      socket.once('disconnect', this.#onDisconnect);
    }

    /** Transport.send: false when the engine.io write buffer is over maxBufferedPackets. */
    #send = (frame) => {
      if (!this.#fast) {
        this.#socket.emit(event, JSON.parse(frame));
        return true;
      }
      const conn = this.#conn;
      if (conn.readyState !== 'open') return true; // going away: 'disconnect' follows
      const entry = this.#packets.get(frame);
      this.#socket.client.writeToEngine(entry.packets, entry.opts);
      if (conn.writeBuffer.length <= maxBufferedPackets) return true;
      if (!this.#congested) {
        this.#congested = true;
        conn.once('drain', this.#onDrain);
      }
      return false;
    };

    // engine.io's 'drain': the write buffer was handed to the transport (now empty)
    #onDrain = () => {
      if (!this.#congested) return;
      this.#congested = false;
      this.#connection?.drained();
    };

    /** A frame of this adapter's own (a refusal on connect, close, retry). */
    #write(text) {
      if (!this.#fast) {
        this.#socket.emit(event, JSON.parse(text));
        return;
      }
      if (this.#conn.readyState !== 'open') return;
      this.#socket.client.writeToEngine([this.#packets.head + text + ']'], { preEncoded: true });
    }

    // Messages the carrier cannot hand over as text are refused by the core
    // (a RefusedMessage): charged to the inbound rate limit like any message.
    #onMessage = (...args) => {
      if (args.length !== 1) {
        inbound.push(
          this.#connection,
          new RefusedMessage(
            adapterCodes.INVALID_MESSAGE,
            `the ${clip(event)} event takes exactly one argument (a message object or its JSON text), got ${args.length}` +
              (typeof args[args.length - 1] === 'function' ? ' (an acknowledgement callback counts as one)' : ''),
          ),
        );
        return;
      }
      const message = args[0];
      if (typeof message === 'string') {
        inbound.push(this.#connection, message);
        return;
      }
      if (isBinary(message)) {
        inbound.push(this.#connection, new RefusedMessage(adapterCodes.INVALID_MESSAGE, 'binary arguments are not protocol messages: send a JSON object or its text'));
        return;
      }
      let text;
      try {
        // the decoded object's text: its size is bounded by engine.io's
        // maxHttpBufferSize; the core checks it against limits.maxMessageBytes
        text = JSON.stringify(message);
      } catch {
        inbound.push(this.#connection, new RefusedMessage(adapterCodes.INVALID_MESSAGE, 'the message could not be serialized as JSON'));
        return;
      }
      inbound.push(this.#connection, text === undefined ? 'undefined' : text);
    };

    #onAny = (name) => {
      if (name === event) return;
      inbound.push(
        this.#connection,
        new RefusedMessage(
          adapterCodes.UNKNOWN_MESSAGE,
          `this namespace carries only the ${JSON.stringify(clip(event))} event, got ${JSON.stringify(clip(String(name)))}`,
        ),
      );
    };

    #onDisconnect = () => {
      links.delete(this);
      this.#connection?.close();
      this.#socket.off(event, this.#onMessage);
      if (exclusive) this.#socket.offAny(this.#onAny);
    };

    /**
     * Transport.close: the hub ends the connection (heartbeat timeout, stall,
     * flood, hub closing). Socket.IO has no close codes: the client gets
     * {"t":"close","code":...,"reason":...} first, then the socket is disconnected.
     */
    #close = (code, reason) => {
      if (this.#closing) return;
      this.#closing = true;
      if (code === 1001 && retry !== '') this.#write(retry); // going away: the clients' return is spread
      this.#write(JSON.stringify({ t: 'close', code, reason }));
      // Over polling, closing the engine.io connection from the server waits
      // for the client's next poll (engine.io holds a 30 s timer for it),
      // which a client told to disconnect never sends: there the namespace
      // socket is disconnected and the client's manager closes the connection
      // (engine.io's ping timeout closes it otherwise).
      this.#socket.disconnect(this.#conn?.transport?.name !== 'polling');
    };

    /** Detach: the client is told (1001), the connection is closed. */
    detach() {
      if (retry !== '') this.#write(retry);
      this.#write(JSON.stringify({ t: 'close', code: 1001, reason: 'deltacast was detached from this server' }));
      this.#onDisconnect();
      this.#socket.off('disconnect', this.#onDisconnect);
      if (exclusive) this.#socket.disconnect(true);
    }
  }

  return {
    /** Open deltacast connections on this namespace. */
    get connections() {
      return links.size;
    },
    /**
     * Detaches: new sockets are no longer connected to the hub; each open one
     * is told (a `close` message, code 1001) and its hub connection closed
     * (the socket itself is disconnected when the namespace is exclusive).
     * Idempotent.
     */
    close() {
      if (detached) return;
      detached = true;
      nsp.off('connection', onConnection);
      for (const link of [...links]) link.detach();
      links.clear();
    },
  };
}

module.exports = { attachSocketIO, codes: { ...codes, ...adapterCodes } };
