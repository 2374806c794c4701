// The SDK's one door to ts-mls (docs/E2EE.md): pinned at 1.6.4, whose 2.0 changes the API, so nothing else
// of the SDK imports it. Cipher suite 1, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, on WebCrypto: the
// same code runs in browsers and in Node 20+.
import {
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type CiphersuiteImpl,
} from 'ts-mls';
import { fromBase64, toBase64 } from './base64.js';

/** The cipher suite of Parley's encrypted conversations (RFC 9420 suite 1). */
export const CIPHER_SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519';
/** The last_resort KeyPackage extension (draft-ietf-mls-extensions): handed out again when no other is left. */
const LAST_RESORT_EXTENSION = 0x000a;

let suite: Promise<CiphersuiteImpl> | undefined;
const suiteImpl = () => (suite ??= getCiphersuiteImpl(getCiphersuiteFromName(CIPHER_SUITE)));

/** A device's Ed25519 signature key pair, base64 (the private key as WebCrypto exports it). */
export interface SignatureKeys {
  publicKey: string;
  privateKey: string;
}

/** The private half of one KeyPackage, base64: what joining a group from a Welcome made for it needs. */
export interface KeyPackageSecrets {
  initPrivateKey: string;
  hpkePrivateKey: string;
  signaturePrivateKey: string;
}

/** A device's new signature key pair: its identity key for every KeyPackage and group it takes part in. */
export async function newSignatureKeys(): Promise<SignatureKeys> {
  const { publicKey, signKey } = await (await suiteImpl()).signature.keygen();
  return { publicKey: toBase64(publicKey), privateKey: toBase64(signKey) };
}

/** The credential identity Parley expects of a device: `<device id>:<user id>`. */
export const deviceIdentity = (deviceId: string, userId: string) => `${deviceId}:${userId}`;

/**
 * A new KeyPackage of `identity` signed with `keys`: its public part as an MLSMessage in base64 (what Parley
 * takes), and its private part, to keep until a Welcome made for it arrives.
 */
export async function newKeyPackage(
  identity: string,
  keys: SignatureKeys,
  options: { lastResort?: boolean } = {},
): Promise<{ keyPackage: string; secrets: KeyPackageSecrets }> {
  const capabilities = defaultCapabilities();
  const extensions = [];
  if (options.lastResort === true) {
    capabilities.extensions.push(LAST_RESORT_EXTENSION);
    extensions.push({ extensionType: LAST_RESORT_EXTENSION, extensionData: new Uint8Array(0) });
  }
  const { publicPackage, privatePackage } = await generateKeyPackageWithKey(
    { credentialType: 'basic', identity: new TextEncoder().encode(identity) },
    capabilities,
    defaultLifetime,
    extensions,
    { publicKey: fromBase64(keys.publicKey), signKey: fromBase64(keys.privateKey) },
    await suiteImpl(),
  );
  const bytes = encodeMlsMessage({
    version: 'mls10',
    wireformat: 'mls_key_package',
    keyPackage: publicPackage,
  });
  return {
    keyPackage: toBase64(bytes),
    secrets: {
      initPrivateKey: toBase64(privatePackage.initPrivateKey),
      hpkePrivateKey: toBase64(privatePackage.hpkePrivateKey),
      signaturePrivateKey: toBase64(privatePackage.signaturePrivateKey),
    },
  };
}
