'use strict';
// deltacast/ws: attachWebSocketServer(wss, hub, options?)
//
// Thin: each WebSocket of the server gets one hub connection; a text frame
// is one client message (handed to connection.receive as the Buffer ws
// read: the core parses the UTF-8 itself); each hub frame is one text frame.
// bufferedAmount over maxBufferedBytes is send() -> false; the flush of the
// socket's buffer is connection.drained(); the hub's close codes (4000,
// 4001, 4003, 1008, 1011, 1001) are the WebSocket close codes.
//
// Identity: the user(req) hook runs in the server's verifyClient (async
// form), which ws calls on every upgrade, standalone or noServer through
// wss.handleUpgrade; a refusal is an HTTP 401/403 with a JSON body
// {code, message}. The server's own options object is adjusted: verifyClient
// (chained after the app's, if any), maxPayload (limits.maxMessageBytes) and,
// when given, perMessageDeflate.
//
// Encode once: each distinct frame string becomes one Buffer, and one
// WebSocket frame (ws's Sender.frame: header + that Buffer, unmasked, as a
// server sends), written to every socket with ws's sender.sendFrame, the
// call ws itself ends every send with and engine.io uses for the same
// purpose; header and payload are joined in one Buffer, so each socket gets
// one socket.write. ws internals used, present in ws 8 (tested with the version in
// package.json): ws._sender.sendFrame(list, cb), ws._sender._state (0: no
// compression or blob read in progress, so nothing is queued ahead), and
// Sender.frame (via ws._sender.constructor). A socket with
// permessage-deflate negotiated, or without these, gets ws.send(sharedBuffer,
// { binary: false }): the same bytes, framed per socket.

const { codes } = require('../errors');
const {
  adapterCodes,
  checkOptions,
  positiveInteger,
  checkHub,
  invalid,
  Refusal,
  resolveIdentity,
  RefusedMessage,
  FrameCache,
  Inbound,
  retryFrame,
  upgradeToken,
  identityHook,
  refreshHook,
  checkAuthenticate,
  auditRefusal,
} = require('./shared');

const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const OPEN = 1;
const FRAME_OPTIONS = Object.freeze({ readOnly: false, mask: false, rsv1: false, opcode: 1, fin: true });
// A close reason is at most 123 bytes (RFC 6455 5.5: control frames carry 125, 2 are the code).
const MAX_REASON_BYTES = 123;

function closeReason(reason) {
  const text = String(reason ?? '');
  if (Buffer.byteLength(text) <= MAX_REASON_BYTES) return text;
  let cut = Buffer.from(text).subarray(0, MAX_REASON_BYTES).toString();
  // a multi-byte character cut in two became U+FFFD (3 bytes): drop it
  while (Buffer.byteLength(cut) > MAX_REASON_BYTES || cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut;
}

function isServer(wss) {
  return (
    wss !== null &&
    typeof wss === 'object' &&
    typeof wss.handleUpgrade === 'function' &&
    typeof wss.on === 'function' &&
    wss.options !== null &&
    typeof wss.options === 'object'
  );
}

/** The verifyClient the app gave its server, as a promise of [ok, code?, message?, headers?]. */
function runAppVerify(verify, info) {
  if (verify.length >= 2) {
    return new Promise((resolve) => verify(info, (ok, code, message, headers) => resolve([ok, code, message, headers])));
  }
  return Promise.resolve([verify(info)]);
}

function attachWebSocketServer(wss, hub, options) {
  if (!isServer(wss)) throw invalid('attachWebSocketServer takes a ws WebSocketServer as its first argument');
  checkHub(hub);
  const retry = retryFrame(hub);
  options = checkOptions(options, ['user', 'authenticate', 'maxBufferedBytes', 'perMessageDeflate', 'maxPayload'], 'attachWebSocketServer');
  if (options.user !== undefined && typeof options.user !== 'function') throw invalid('options.user must be a function (req) => identity');
  checkAuthenticate(options);
  // user(req), or authenticate(token, req) with the upgrade's token (subprotocol token.<t>, or the deltacast_token cookie)
  const userHook = identityHook(options, upgradeToken);
  const maxBufferedBytes = positiveInteger(options.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 'options.maxBufferedBytes');
  const hubLimit = hub.options?.limits?.maxMessageBytes;
  const maxPayload = positiveInteger(options.maxPayload, Number.isInteger(hubLimit) ? hubLimit : 64 * 1024, 'options.maxPayload');
  const deflate = options.perMessageDeflate;
  if (deflate !== undefined && typeof deflate !== 'boolean' && (deflate === null || typeof deflate !== 'object')) {
    throw invalid('options.perMessageDeflate must be a boolean or ws perMessageDeflate options');
  }

  const serverOptions = wss.options;
  const appVerify = serverOptions.verifyClient;
  if (appVerify !== undefined && appVerify !== null && typeof appVerify !== 'function') throw invalid('the server has a verifyClient that is not a function');
  // ws reads these on every upgrade (handleUpgrade, completeUpgrade)
  // (restored by close(); verifyClient stays, refusing upgrades once detached)
  const previous = { maxPayload: serverOptions.maxPayload, perMessageDeflate: serverOptions.perMessageDeflate };
  serverOptions.maxPayload = maxPayload;
  if (deflate !== undefined) serverOptions.perMessageDeflate = deflate;

  const identities = new WeakMap(); // req -> identity from the user hook
  const inbound = new Inbound();
  const links = new Set();
  let detached = false;

  const refuse = (cb, refusal) => {
    auditRefusal(hub, 'ws', refusal);
    cb(false, refusal.status, JSON.stringify(refusal.body), { 'Content-Type': 'application/json' });
  };

  serverOptions.verifyClient = (info, cb) => {
    if (detached) {
      refuse(cb, new Refusal(adapterCodes.CLOSED, 503, 'deltacast is detached from this server'));
      return;
    }
    const checks = appVerify ? runAppVerify(appVerify, info) : Promise.resolve([true]);
    checks
      .then(([ok, code, message, headers]) => {
        if (!ok) {
          cb(false, code, message, headers);
          return;
        }
        if (userHook === undefined) {
          cb(true);
          return;
        }
        return resolveIdentity(userHook, info.req).then(
          (user) => {
            identities.set(info.req, user);
            cb(true);
          },
          (refusal) => refuse(cb, refusal),
        );
      })
      .catch(() => refuse(cb, new Refusal(adapterCodes.UNAUTHORIZED, 401, 'the identity was refused')));
  };

  // One Buffer and one WebSocket frame per distinct frame string. The frame
  // is one contiguous Buffer (header and payload joined once per frame):
  // sendFrame then makes a single socket.write per socket, where the
  // [header, payload] pair ws.send makes costs a cork, two writes, an uncork
  // and a writev.
  let Sender = null; // ws's Sender class, from the first socket (the same ws copy as the server's)
  const bytes = new FrameCache((frame) => {
    const buffer = Buffer.from(frame);
    return { buffer, framed: Sender === null ? null : [joined(Sender.frame(buffer, FRAME_OPTIONS))] };
  });

  class SocketLink {
    #ws;
    #connection = null;
    #preframed;
    #congested = false;
    #lastWrite = 0; // sequence of the latest write made while congested

    constructor(ws) {
      this.#ws = ws;
      const sender = ws._sender;
      if (Sender === null && typeof sender?.constructor?.frame === 'function') Sender = sender.constructor;
      this.#preframed =
        Sender !== null && ws.extensions === '' && typeof sender?.sendFrame === 'function' && sender._state === 0 && sender.constructor === Sender;
    }

    open(user, req) {
      const ws = this.#ws;
      ws.on('error', noop); // protocol errors (oversized, bad UTF-8): ws closes the socket with 1009/1007
      try {
        const authenticate = refreshHook(options, req); // {"t":"auth"} refreshes
        this.#connection = hub.connect({ send: this.#send, close: this.#close, user, kind: 'ws', authenticate });
      } catch (err) {
        ws.close(1011, closeReason(err.message));
        return;
      }
      links.add(this);
      ws.on('message', this.#onMessage);
      ws.once('close', this.#onClose);
    }

    /** Transport.send: false when bufferedAmount would pass maxBufferedBytes. */
    #send = (frame) => {
      const ws = this.#ws;
      if (ws.readyState !== OPEN) return true; // going away: 'close' follows
      const entry = bytes.get(frame);
      const over = this.#congested || ws.bufferedAmount + entry.buffer.length > maxBufferedBytes;
      // a callback only on writes made while over: it fires once the write is flushed to the kernel
      const cb = over ? this.#flushedCallback() : undefined;
      // the sender's state is checked on each write: a blob read by the app would queue ahead
      if (this.#preframed && entry.framed !== null && ws._sender._state === 0) ws._sender.sendFrame(entry.framed, cb);
      else ws.send(entry.buffer, { binary: false }, cb);
      if (!over) return true;
      this.#congested = true;
      return false;
    };

    #flushedCallback() {
      const seq = ++this.#lastWrite;
      return (err) => {
        if (err || seq !== this.#lastWrite || !this.#congested) return;
        // the latest write is flushed, so is everything before it
        this.#congested = false;
        this.#connection?.drained();
      };
    }

    #onMessage = (data, isBinary) => {
      if (isBinary) {
        // refused by the core: charged to the inbound rate limit like any message
        inbound.push(this.#connection, new RefusedMessage(adapterCodes.INVALID_MESSAGE, 'binary frames are not protocol messages: send JSON text frames'));
        return;
      }
      // ws hands text as a Buffer (binaryType 'nodebuffer'); other binaryTypes are joined into one
      inbound.push(this.#connection, Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data);
    };

    #onClose = () => {
      links.delete(this);
      this.#connection?.close();
    };

    /** Transport.close: the hub's code and reason become the WebSocket close frame. */
    #close = (code, reason) => {
      const ws = this.#ws;
      if (ws.readyState !== OPEN) return;
      if (code === 1001 && retry !== '') ws.send(retry); // going away: the clients' return is spread
      ws.close(code, closeReason(reason));
    };

    detach() {
      this.#ws.off('message', this.#onMessage);
      this.#onClose();
      this.#close(1001, 'deltacast was detached from this server');
    }
  }

  const onConnection = (ws, req) => {
    if (detached) {
      ws.close(1001, 'deltacast is detached from this server');
      return;
    }
    if (userHook !== undefined && !identities.has(req)) {
      // upgraded without passing verifyClient (another server's handleUpgrade)
      ws.close(1008, 'no identity');
      return;
    }
    new SocketLink(ws).open(userHook === undefined ? undefined : identities.get(req), req);
  };
  wss.on('connection', onConnection);

  return {
    /** Open deltacast connections on this server. */
    get connections() {
      return links.size;
    },
    /**
     * noServer mode: hands an HTTP upgrade to the server (identity checked
     * first; a refusal is written as an HTTP 401/403 response). Call it from
     * your http.Server's 'upgrade' event for the path you choose.
     */
    handleUpgrade(req, socket, head) {
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    /**
     * Detaches: upgrades are refused (503 DELTACAST_CLOSED), open sockets
     * are closed with 1001 and their hub connections closed. The server
     * itself stays up (close it with wss.close()). Idempotent.
     */
    close() {
      if (detached) return;
      detached = true;
      for (const link of [...links]) link.detach();
      links.clear();
      wss.off('connection', onConnection);
      serverOptions.maxPayload = previous.maxPayload;
      if (deflate !== undefined) serverOptions.perMessageDeflate = previous.perMessageDeflate;
    },
  };
}

function noop() {}

/** Sender.frame's list ([header, payload], or one Buffer) as one Buffer. */
function joined(list) {
  return list.length === 1 ? list[0] : Buffer.concat(list);
}

module.exports = { attachWebSocketServer, codes: { ...codes, ...adapterCodes } };
