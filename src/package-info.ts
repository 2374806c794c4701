import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// What package.json says of Parley, read once: src/ and the bundle in dist/ are both one level below it.
const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
  license: string;
};

/** Parley's version (package.json), as the OpenAPI document states it. */
export const PACKAGE_VERSION = manifest.version;
/** Parley's license, an SPDX identifier (package.json). */
export const PACKAGE_LICENSE = manifest.license;

/** The repository's root (where package.json is): the web demo's built files are under it. */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));
