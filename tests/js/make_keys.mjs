// Makes keys as OpenPGP.js users publish them and prints them armored, one block after the
// other: the library's default (v4, Ed25519 and X25519: RFC 9580's algorithms) and a v6 key
// (config.v6Keys), each with one user ID. Fresh ones on every run: the interoperability test
// reads them with the gateway's own verifier (hkp/modern.hpp).
//   node make_keys.mjs
import * as openpgp from 'openpgp';

for (const v6Keys of [false, true]) {
  const { publicKey } = await openpgp.generateKey({
    type: 'curve25519',
    userIDs: [{ name: 'Interop Test', email: v6Keys ? 'six@example.org' : 'four@example.org' }],
    format: 'armored',
    config: { v6Keys },
  });
  process.stdout.write(publicKey);
}
