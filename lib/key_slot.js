'use strict';

// The Redis Cluster hash slot of a key or channel (deltacast/redis uses it to
// tell which master carries a followed topic's notifications).
//
// Not cluster-key-slot (the package node-redis routes with): its 1.1.2
// disagrees with Redis on keys whose first "{" is followed at once by "}"
// when another "}" comes later: it gives "a{}}b" slot 0, where Redis hashes
// the whole key (CLUSTER KEYSLOT: 1887). test/js/redis.keyslot.test.js checks
// this function against a real server's CLUSTER KEYSLOT.

/**
 * The cluster slot of a key or channel (Redis Cluster specification, "Keys
 * distribution model"): CRC16-XMODEM of its UTF-8 bytes, or of the bytes
 * between the first `{` and the next `}` when there are any, mod 16384.
 */
function keySlot(key) {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

module.exports = { keySlot };
