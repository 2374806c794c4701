import type { StorageConfig } from '../config.ts';
import { LocalDiskStorage } from './local-disk-storage.ts';
import type { ObjectStorage } from './object-storage.ts';
import { S3Storage } from './s3-storage.ts';

/** The storage the configuration names (PARLEY_STORAGE; docs/ATTACHMENTS.md, "Storage"). */
export function openStorage(config: StorageConfig): ObjectStorage {
  if (config.kind === 'disk') return new LocalDiskStorage(config.root);
  return new S3Storage({
    region: config.region,
    bucket: config.bucket,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    ...(config.accessKeyId === undefined ? {} : { accessKeyId: config.accessKeyId }),
    ...(config.secretAccessKey === undefined ? {} : { secretAccessKey: config.secretAccessKey }),
    ...(config.prefix === undefined ? {} : { prefix: config.prefix }),
  });
}
