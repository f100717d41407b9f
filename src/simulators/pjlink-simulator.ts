import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';
import { LineSplitter } from '../driver-api/transport/line-splitter.js';
import { parseRequest, pjlinkTerminator } from '../drivers/pjlink/pjlink-codec.js';

export interface PjlinkSimulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** When set, the simulator asks for PJLink authentication (`PJLINK 1 <random>`). */
  password?: string;
  name?: string;
  /** Called with the number of open connections whenever one opens or closes (tests count them). */
  onConnections?: (open: number) => void;
}

/**
 * A simulated PJLink class 1 projector on loopback, for the demo and the tests: power, input, A/V mute,
 * name, input list. It answers like a real one (ERR1 for an unknown command, ERR2 for a bad parameter)
 * and lets a test drop every connection to exercise the driver's reconnect.
 */
export class PjlinkSimulator {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  power: '0' | '1' = '0';
  input = '31';
  mute = '30';
  readonly inputs = ['11', '12', '31', '32', '51'];
  /** Commands received, for tests (`POWR 1`, `INPT ?`...). */
  readonly received: string[] = [];

  constructor(private readonly options: PjlinkSimulatorOptions = {}) {}

  async start(): Promise<AddressInfo> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return this.address();
  }

  address(): AddressInfo {
    return this.server!.address() as AddressInfo;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** Cuts every open connection, as a projector that reboots or a network that drops. */
  dropConnections(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.options.onConnections?.(this.sockets.size);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.options.onConnections?.(this.sockets.size);
    });
    socket.on('error', () => {});
    socket.setEncoding('latin1');
    const random = randomBytes(4).toString('hex');
    let digest = this.options.password ? createHash('md5').update(random + this.options.password).digest('hex') : '';
    socket.write(this.options.password ? `PJLINK 1 ${random}${pjlinkTerminator}` : `PJLINK 0${pjlinkTerminator}`);
    const splitter = new LineSplitter();
    socket.on('data', (chunk: string) => {
      for (const line of splitter.push(chunk)) {
        if (digest) {
          if (!line.startsWith(digest)) {
            socket.end(`PJLINK ERRA${pjlinkTerminator}`);
            return;
          }
        }
        const request = parseRequest(line, digest.length);
        digest = '';
        if (request.kind === 'malformed') continue;
        this.received.push(`${request.command} ${request.param}`);
        socket.write(`%1${request.command}=${this.answer(request.command, request.param)}${pjlinkTerminator}`);
      }
    });
  }

  private answer(command: string, param: string): string {
    const query = param === '?';
    switch (command) {
      case 'POWR':
        if (query) return this.power;
        if (param !== '0' && param !== '1') return 'ERR2';
        this.power = param;
        return 'OK';
      case 'INPT':
        if (query) return this.input;
        if (!this.inputs.includes(param)) return 'ERR2';
        if (this.power !== '1') return 'ERR3';
        this.input = param;
        return 'OK';
      case 'AVMT':
        if (query) return this.mute;
        if (!['10', '11', '20', '21', '30', '31'].includes(param)) return 'ERR2';
        this.mute = param;
        return 'OK';
      case 'NAME':
        return query ? (this.options.name ?? 'Switchboard simulated projector') : 'ERR2';
      case 'INST':
        return query ? this.inputs.join(' ') : 'ERR2';
      case 'CLSS':
        return query ? '1' : 'ERR2';
      default:
        return 'ERR1';
    }
  }
}
