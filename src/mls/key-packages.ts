// The server's one door to ts-mls (docs/E2EE.md): Parley is the MLS Delivery Service and sees only bytes, but
// it is also the Authentication Service for the identities it issues, so it reads and checks the KeyPackages
// devices upload. ts-mls is pinned (its 2.0 changes the API, and the signature checks used here are not
// exported from its root): nothing else of the server imports it.
import { decodeMlsMessage, getCiphersuiteFromName, getCiphersuiteImpl, type CiphersuiteImpl } from 'ts-mls';
import { verifyKeyPackage } from 'ts-mls/keyPackage.js';
import { verifyLeafNodeSignatureKeyPackage } from 'ts-mls/leafNode.js';

/** The cipher suite Parley's e2ee conversations use (RFC 9420 suite 1). */
export const MLS_CIPHER_SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';

/** The credential identity of a device: what its KeyPackages' basic credential must carry. */
export function deviceIdentity(deviceId: string, userId: string): string {
  // The device id (a UUID, fixed length) first: a user id may contain ':' itself.
  return `${deviceId}:${userId}`;
}

/** What Parley reads of a KeyPackage whose signatures hold. */
export interface KeyPackageFacts {
  /** The basic credential's identity, UTF-8. */
  identity: string;
  /** The leaf's signature public key: the device's identity key. */
  signatureKey: Uint8Array;
}

/** Why a KeyPackage is refused, in words for a problem's field error. */
export class KeyPackageError extends Error {}

let suite: Promise<CiphersuiteImpl> | undefined;
const suiteImpl = () => (suite ??= getCiphersuiteImpl(getCiphersuiteFromName(MLS_CIPHER_SUITE)));

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes an MLSMessage holding a KeyPackage (RFC 9420 §10) and checks what a Delivery Service can: the whole
 * input is one KeyPackage of MLS 1.0 and cipher suite 1, with a basic credential, both signatures valid
 * under the leaf's signature key, distinct init and encryption keys, and a lifetime that includes now. Throws KeyPackageError otherwise.
 */
export async function inspectKeyPackage(bytes: Uint8Array, nowSeconds: number): Promise<KeyPackageFacts> {
  let decoded: ReturnType<typeof decodeMlsMessage>;
  try {
    decoded = decodeMlsMessage(bytes, 0);
  } catch {
    // ts-mls throws on some malformed inputs (and a TypeError on unknown credential types).
    decoded = undefined;
  }
  if (decoded === undefined) throw new KeyPackageError('is not an MLS message');
  const [message, read] = decoded;
  if (read !== bytes.length) throw new KeyPackageError('has bytes after the MLS message');
  // The decoder takes MLS 1.0 only, and a KeyPackage's leaf is always of source key_package.
  if (message.wireformat !== 'mls_key_package') throw new KeyPackageError('is not an MLS 1.0 KeyPackage');
  const keyPackage = message.keyPackage;
  if (keyPackage.cipherSuite !== MLS_CIPHER_SUITE)
    throw new KeyPackageError(`is not of cipher suite ${MLS_CIPHER_SUITE}`);
  const leaf = keyPackage.leafNode;
  if (leaf.credential.credentialType !== 'basic') throw new KeyPackageError('has no basic credential');
  let identity: string;
  try {
    identity = utf8.decode(leaf.credential.identity);
  } catch {
    throw new KeyPackageError('has a credential identity that is not UTF-8');
  }
  const { signature } = await suiteImpl();
  const isSigned =
    (await verifyLeafNodeSignatureKeyPackage(leaf, signature)) &&
    (await verifyKeyPackage(keyPackage, signature));
  if (!isSigned) throw new KeyPackageError('has a signature that does not verify');
  if (Buffer.from(keyPackage.initKey).equals(Buffer.from(leaf.hpkePublicKey)))
    throw new KeyPackageError('uses its encryption key as its init key');
  const now = BigInt(nowSeconds);
  if (leaf.lifetime.notBefore > now || leaf.lifetime.notAfter < now)
    throw new KeyPackageError('is outside its lifetime');
  return { identity, signatureKey: leaf.signaturePublicKey };
}
