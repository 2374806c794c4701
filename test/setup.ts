import { afterAll } from 'vitest';
import { reportContractViolations } from './helpers/response-contract.ts';

// Run in every test file (vitest.config.ts, setupFiles): once its tests have run, any response of its test
// apps that the OpenAPI document does not describe fails the file (test/helpers/response-contract.ts).
afterAll(() => {
  reportContractViolations();
});
