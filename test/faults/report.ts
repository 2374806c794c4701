import type { FaultRunResult } from './engine.ts';

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The run's figures as the suite prints them, one per line. */
export function formatReport(
  result: FaultRunResult,
  replay = `npm run faults -- --seed ${result.seed}`,
): string {
  const f = result.figures;
  const errors = (e: FaultRunResult['figures']['serverErrorsOutside']) =>
    `${e.total} (500: ${e.status500}, 503: ${e.status503}, other 5xx: ${e.other})`;
  const lines = [
    `fault-injection run, seed ${result.seed} (replay: ${replay})`,
    'faults (recovered = a send through every server reached a socket on every server):',
    ...result.faults.map((fault, n) => {
      const back =
        fault.serviceBackAt === null ? '' : `, back after ${seconds(fault.serviceBackAt - fault.startedAt)}`;
      const recovered =
        fault.recoveredAt === null
          ? 'DID NOT RECOVER'
          : `recovered after ${seconds(fault.recoveredAt - fault.startedAt)}`;
      return `  ${n + 1}. at +${seconds(fault.startedAt - result.startedAt)}: ${fault.label}${back}; ${recovered}`;
    }),
    `attempted                 ${f.attempted}`,
    `acknowledged              ${f.acknowledged} (${f.acknowledgedOverSocket} over the socket)`,
    `stored                    ${f.stored} (unacknowledged: ${f.unacknowledgedStored} stored, ${f.unacknowledgedNotStored} not)`,
    `lost                      ${f.lost}`,
    `duplicated                ${f.duplicated}`,
    `seq gaps                  ${f.seqGaps}`,
    `reader gaps               ${f.readerGaps} of ${f.readerStreams} streams (${f.readerSessions} sockets, ${f.syncFills} sync fills)`,
    `stalled sockets           ${f.stalledSockets}`,
    `webhooks                  ${result.webhooks.arrived} of ${result.webhooks.expected} stored messages delivered (lost ${result.webhooks.lost}, repeats ${result.webhooks.repeated})`,
    `5xx outside fault windows ${errors(f.serverErrorsOutside)}`,
    `5xx inside fault windows  ${errors(f.serverErrorsInside)}`,
    `retries                   ${f.retries} (no answer: ${f.networkErrors} cut or refused, ${f.timeouts} timed out; 429: ${f.rateLimited})`,
    `refused (4xx)             ${f.refusals}`,
    `wall time                 ${seconds(result.wallMs)}`,
    result.failures.length === 0 ? 'result: PASS' : `result: FAIL: ${result.failures.join('; ')}`,
  ];
  if (result.details.length > 0)
    lines.push('details:', ...result.details.slice(0, 40).map((line) => `  ${line}`));
  return lines.join('\n');
}
