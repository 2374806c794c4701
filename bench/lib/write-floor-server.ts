// The server side of the write-floor scenario: a plain TCP server (no HTTP, no WebSocket, no Parley) that
// writes the same bytes to every accepted socket when asked, and reports the CPU time that took. Run as its
// own process, so the clients reading in the generator's process are not counted.
import net from 'node:net';

export type WriteFloorCommand = {
  kind: 'write';
  rounds: number;
  framesPerWrite: number;
  frameBytes: number;
  intervalMs: number;
};
export interface WriteFloorReport {
  writes: number;
  cpuMicros: number;
}

const sockets: net.Socket[] = [];
const server = net.createServer((socket) => {
  // As ws does for every WebSocket: each write leaves at once.
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  sockets.push(socket);
});

async function write(command: WriteFloorCommand): Promise<WriteFloorReport> {
  const chunk = Buffer.alloc(command.frameBytes * command.framesPerWrite, 0x61);
  const before = process.cpuUsage();
  for (let round = 0; round < command.rounds; round++) {
    for (const socket of sockets) socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, command.intervalMs));
  }
  const used = process.cpuUsage(before);
  return { writes: command.rounds * sockets.length, cpuMicros: used.user + used.system };
}

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});
process.on('message', (command: WriteFloorCommand) => {
  void write(command).then((report) => process.send?.(report));
});
process.on('disconnect', () => process.exit(0));
