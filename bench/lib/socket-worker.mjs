// Worker threads do not take `--import tsx` on Node 20: register tsx here, then run the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./socket-worker.ts');
