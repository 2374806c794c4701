import {
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  type CiphersuiteImpl,
} from 'ts-mls';
import { MLS_CIPHER_SUITE } from '../../src/mls/key-packages.ts';

// A device's side of KeyPackages, for tests of what the server takes: made with ts-mls as a client would.

let suite: Promise<CiphersuiteImpl> | undefined;
const suiteImpl = () => (suite ??= getCiphersuiteImpl(getCiphersuiteFromName(MLS_CIPHER_SUITE)));

/** A device's signature key pair, for all its KeyPackages. */
export async function newSignatureKeys(): Promise<{ signKey: Uint8Array; publicKey: Uint8Array }> {
  return (await suiteImpl()).signature.keygen();
}

/** One KeyPackage (an MLSMessage, base64) whose basic credential's identity is `identity`. */
export async function keyPackageFor(
  identity: string,
  keys: { signKey: Uint8Array; publicKey: Uint8Array },
): Promise<string> {
  const credential = { credentialType: 'basic' as const, identity: new TextEncoder().encode(identity) };
  const { publicPackage } = await generateKeyPackageWithKey(
    credential,
    defaultCapabilities(),
    defaultLifetime,
    [],
    keys,
    await suiteImpl(),
  );
  const bytes = encodeMlsMessage({
    version: 'mls10',
    wireformat: 'mls_key_package',
    keyPackage: publicPackage,
  });
  return Buffer.from(bytes).toString('base64');
}
