// Reads an answer of the gateway (armored or binary keys) with OpenPGP.js and prints, as one
// line of JSON per key, what a client built on it sees: fingerprint, revoked, expiry, user IDs
// and subkeys (with their own revocation state). Exit 2 when OpenPGP.js cannot read the input.
//   node read_keys.mjs FILE
import { readFileSync } from 'node:fs';
import * as openpgp from 'openpgp';

const data = readFileSync(process.argv[2]);
const text = data.toString('latin1');
let keys;
try {
  keys = text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')
    ? await openpgp.readKeys({ armoredKeys: data.toString('utf8') })
    : await openpgp.readKeys({ binaryKeys: new Uint8Array(data) });
} catch (e) {
  console.error(`openpgp.js: ${e.message}`);
  process.exit(2);
}
for (const key of keys) {
  const expires = await key.getExpirationTime();
  const subkeys = [];
  for (const sub of key.getSubkeys()) {
    subkeys.push({
      fingerprint: sub.getFingerprint().toUpperCase(),
      revoked: await sub.isRevoked(key.keyPacket),
    });
  }
  console.log(JSON.stringify({
    fingerprint: key.getFingerprint().toUpperCase(),
    revoked: await key.isRevoked(),
    expires: expires === Infinity ? null : (expires ? Math.floor(expires.getTime() / 1000) : 0),
    users: key.getUserIDs(),
    subkeys,
  }));
}
