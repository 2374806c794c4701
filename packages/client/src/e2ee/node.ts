// @parley/client/e2ee in Node: everything of the browser entry, and a store in a file.
export * from './index.js';
export { FileStore } from './file-store.js';
