import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from '../lib/report.ts';
import type { WriteFloorCommand, WriteFloorReport } from '../lib/write-floor-server.ts';

/**
 * What one write to a loopback TCP socket costs the writing process on this machine, without Parley: the
 * floor under `fanout`'s CPU per delivery while each delivery is one write. A plain Node TCP server writes a
 * frame-sized chunk to each of `sockets` sockets per round (one write per socket, a round every 250 ms, as
 * fanout's 4 msg/s), then the same with four frames per write (what a per-socket flush interval would send).
 * CPU is the writing process's user + system time; on loopback it includes the kernel's receive-side work
 * for each segment, which a real network would do on the receiving host.
 */
export async function writeFloor(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    sockets: isQuick ? 500 : 5000,
    frame_bytes: 512,
    rounds: isQuick ? 4 : 40,
    interval_ms: 250,
  };
  const child = fork(fileURLToPath(new URL('../lib/write-floor-server.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = <T>() =>
    new Promise<T>((resolve) => child.once('message', (message) => resolve(message as T)));
  const clients: net.Socket[] = [];
  let received = 0;
  try {
    const { port } = await next<{ port: number }>();
    for (let index = 0; index < params.sockets; index += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, params.sockets - index) }, () => {
          return new Promise<void>((resolve, reject) => {
            const socket = net.connect(port, '127.0.0.1', () => resolve());
            socket.on('data', (data) => (received += data.length));
            socket.once('error', reject);
            clients.push(socket);
          });
        }),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // every accept done
    const measure = async (framesPerWrite: number) => {
      const expected = received + params.sockets * params.rounds * params.frame_bytes * framesPerWrite;
      const command: WriteFloorCommand = {
        kind: 'write',
        rounds: params.rounds,
        framesPerWrite,
        frameBytes: params.frame_bytes,
        intervalMs: params.interval_ms,
      };
      const reply = next<WriteFloorReport>();
      child.send(command);
      const report = await reply;
      // Every byte written must have arrived, or the figure would count writes that never left.
      const deadline = performance.now() + 10_000;
      while (received < expected && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      if (received < expected) throw new Error(`write-floor: ${expected - received} bytes did not arrive`);
      return report.cpuMicros / report.writes;
    };
    await measure(1); // warm-up
    const perWrite = await measure(1);
    const perWriteOfFour = await measure(4);
    return {
      scenario: 'write-floor',
      db,
      params,
      figures: {
        cpu_us_per_write: perWrite,
        cpu_us_per_frame_4_per_write: perWriteOfFour / 4,
      },
      targets: {},
      notes: [
        'no Parley: a plain Node TCP server writing to loopback sockets, CPU of the writing process',
        `cpu_us_per_write: one ${params.frame_bytes}-byte write per socket per round, as fanout's delivery at 4 msg/s`,
        'cpu_us_per_frame_4_per_write: four frames in each write, divided by four',
      ],
    };
  } finally {
    for (const socket of clients) socket.destroy();
    child.disconnect();
  }
}
