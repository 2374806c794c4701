import { readFileSync } from 'node:fs';

// What package.json says of Parley, read once: src/ and the bundle in dist/ are both one level below it.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
  license: string;
};

/** Parley's version (package.json), as the OpenAPI document states it. */
export const PACKAGE_VERSION = manifest.version;
/** Parley's license, an SPDX identifier (package.json). */
export const PACKAGE_LICENSE = manifest.license;
