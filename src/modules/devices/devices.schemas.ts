import { Type, type Static } from 'typebox';
import { EXAMPLE, Nullable, count, text, Timestamp, Uuid } from '../../http/schemas.ts';
import { UserIdSchema } from '../users/user-id.ts';

/** Devices one user may have at once: a new one beyond it is refused until one is deleted. */
export const MAX_DEVICES_PER_USER = 20;
/** KeyPackages one device may have waiting (its last-resort one apart). */
export const MAX_KEY_PACKAGES_PER_DEVICE = 100;
/** KeyPackages one upload may carry. */
export const MAX_KEY_PACKAGES_PER_UPLOAD = 50;
/** The longest KeyPackage taken, base64 (suite 1 makes about 500 characters; room for extensions). */
const MAX_KEY_PACKAGE_BASE64 = 8192;

const DEVICE_ID = '019a9b74-7c8d-7e9f-8a0b-1c2d3e4f5a6b';
const SIGNATURE_KEY = 'eSGjd4T56iVxXPPMUTAi1efM4idmzltwrLIgAsY+yDs=';
/** A KeyPackage as uploaded and claimed (an MLSMessage, base64; abridged here). */
const KEY_PACKAGE_EXAMPLE = 'AAEABQABAAEgf3Rk0pX2kq7vNn1w3M2b5x0QJ8vK9rZc4T2yq1aH0m8gV7bWQ==';

const Base64 = (maxLength: number, description: string) =>
  Type.String({ pattern: '^[A-Za-z0-9+/]+={0,2}$', minLength: 4, maxLength, description });

const KeyPackage = Base64(
  MAX_KEY_PACKAGE_BASE64,
  'An MLS KeyPackage (RFC 9420 §10) as an MLSMessage, base64: cipher suite 1, a basic credential whose ' +
    'identity is `<device id>:<user id>`, signed by the device’s signature key',
);

const DEVICE_EXAMPLE = {
  id: DEVICE_ID,
  name: 'Alice’s laptop',
  signature_key: SIGNATURE_KEY,
  key_packages_available: 24,
  has_last_resort: true,
  created_at: EXAMPLE.time,
};

export const DeviceName = text(200, { minLength: 1, examples: ['Alice’s laptop'] });

/** A device of the caller, with the state of its KeyPackages. */
export const Device = Type.Object(
  {
    id: Uuid,
    name: Nullable(DeviceName),
    signature_key: Nullable(
      Type.String({
        ...Base64(64, ''),
        description:
          'Its Ed25519 signature public key, base64: set by its first KeyPackage, and every later one must ' +
          'carry it. Null before the first upload.',
      }),
    ),
    key_packages_available: count({
      description: 'KeyPackages waiting to be claimed, the last resort apart',
    }),
    has_last_resort: Type.Boolean({ description: 'Whether it has a last-resort KeyPackage' }),
    created_at: Timestamp,
  },
  { title: 'Device', examples: [DEVICE_EXAMPLE] },
);
export type Device = Static<typeof Device>;

/** Another user's device, as those who share a conversation with them see it. */
export const PublicDevice = Type.Object(
  {
    id: Uuid,
    user_id: UserIdSchema,
    signature_key: Device.properties.signature_key,
    created_at: Timestamp,
  },
  {
    title: 'PublicDevice',
    examples: [{ id: DEVICE_ID, user_id: 'alice', signature_key: SIGNATURE_KEY, created_at: EXAMPLE.time }],
  },
);

export const DeviceList = Type.Object(
  { data: Type.Array(Device, { maxItems: MAX_DEVICES_PER_USER, description: 'Oldest first' }) },
  { title: 'DeviceList', examples: [{ data: [DEVICE_EXAMPLE] }] },
);

export const PublicDeviceList = Type.Object(
  { data: Type.Array(PublicDevice, { maxItems: MAX_DEVICES_PER_USER, description: 'Oldest first' }) },
  {
    title: 'PublicDeviceList',
    examples: [
      { data: [{ id: DEVICE_ID, user_id: 'alice', signature_key: SIGNATURE_KEY, created_at: EXAMPLE.time }] },
    ],
  },
);

export const CreateDeviceBody = Type.Object(
  { name: Type.Optional(DeviceName) },
  { title: 'CreateDeviceBody', additionalProperties: false, examples: [{ name: 'Alice’s laptop' }] },
);

export const DeviceParams = Type.Object({ device_id: Uuid });

export const UploadKeyPackagesBody = Type.Object(
  {
    key_packages: Type.Array(KeyPackage, {
      maxItems: MAX_KEY_PACKAGES_PER_UPLOAD,
      description: `Up to ${MAX_KEY_PACKAGES_PER_UPLOAD} KeyPackages, each claimed once`,
    }),
    last_resort: Type.Optional(
      Type.String({
        ...KeyPackage,
        description:
          'A KeyPackage handed out whenever the device has no other left (it replaces the previous one)',
      }),
    ),
  },
  {
    title: 'UploadKeyPackagesBody',
    additionalProperties: false,
    examples: [{ key_packages: [KEY_PACKAGE_EXAMPLE], last_resort: KEY_PACKAGE_EXAMPLE }],
  },
);
export type UploadKeyPackagesBody = Static<typeof UploadKeyPackagesBody>;

export const ClaimedKeyPackages = Type.Object(
  {
    data: Type.Array(
      Type.Object({ device_id: Uuid, key_package: KeyPackage, is_last_resort: Type.Boolean() }),
      {
        maxItems: MAX_DEVICES_PER_USER,
        description: 'One KeyPackage per device of the user that has one, oldest device first',
      },
    ),
  },
  {
    title: 'ClaimedKeyPackages',
    examples: [{ data: [{ device_id: DEVICE_ID, key_package: KEY_PACKAGE_EXAMPLE, is_last_resort: false }] }],
  },
);

export const UserDevicesParams = Type.Object({ user_id: UserIdSchema });
