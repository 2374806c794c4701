// A device's side of KeyPackages, for tests of what the server takes: made by the SDK's MLS adapter, as a
// client would make them.
export { newSignatureKeys, type SignatureKeys } from '../../packages/client/src/e2ee/mls.ts';
import { newKeyPackage, type SignatureKeys } from '../../packages/client/src/e2ee/mls.ts';

/** One KeyPackage (an MLSMessage, base64) whose basic credential's identity is `identity`. */
export async function keyPackageFor(identity: string, keys: SignatureKeys): Promise<string> {
  return (await newKeyPackage(identity, keys)).keyPackage;
}
