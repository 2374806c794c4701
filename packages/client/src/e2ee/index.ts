// @parley/client/e2ee: end-to-end encryption with MLS (docs/E2EE.md), a separate entry so that clients without
// it do not load the MLS library. Today: this device's registration, its KeyPackages, and claiming others'.
export { claimKeyPackages, E2eeDevice } from './devices.js';
export { CIPHER_SUITE, type KeyPackageSecrets, type SignatureKeys } from './mls.js';
export { IndexedDbStore } from './indexeddb-store.js';
export { MemoryStore, type E2eeStore } from './store.js';
