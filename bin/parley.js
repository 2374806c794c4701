#!/usr/bin/env node
// The `parley` operator CLI (src/cli.ts), run through tsx like the server.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
