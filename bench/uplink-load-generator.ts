// The uplink benchmark's load generator, in its own process: G simulated gateways send
// PUSH_DATA over real UDP to a Galet on loopback, each uplink heard by `copies` gateways.
// Frames are built before the timed phase so that the generator spends its time sending.
// Protocol with the parent: argv JSON in, one JSON line per phase out on stdout.
import { createSocket, type Socket } from 'node:dgram';
import { encodePacket } from '../src/gateway/semtech-udp/packets.js';
import { AesKey } from '../src/lorawan/crypto/aes.js';
import { buildDataFrame } from '../src/lorawan/data-frame.js';
import { benchDevice, benchGatewayId } from './uplink-devices.js';

interface Options {
  port: number;
  gateways: number;
  copies: number;
  deviceCount: number;
  ratePerSecond: number;
  durationSeconds: number;
  fCntStart: number;
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options;
const FREQUENCIES_MHZ = [868.1, 868.3, 868.5, 867.1, 867.3, 867.5, 867.7, 867.9];

function say(message: object): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function openSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.on('message', () => {}); // PUSH_ACK / PULL_ACK: drained and ignored
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

async function main(): Promise<void> {
  const sockets: Socket[] = [];
  for (let g = 0; g < options.gateways; g++) sockets.push(await openSocket());
  const send = (g: number, datagram: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      sockets[g]!.send(datagram, options.port, '127.0.0.1', (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  for (let g = 0; g < options.gateways; g++) {
    await send(
      g,
      encodePacket({ type: 'PULL_DATA', version: 2, token: g, gatewayId: benchGatewayId(g) }),
    );
  }

  const total = Math.round(options.ratePerSecond * options.durationSeconds);
  const started = Date.now();
  const datagrams: Array<Array<[number, Uint8Array]>> = new Array(total);
  const keys = new Map<number, { nwk: AesKey; app: AesKey }>();
  for (let i = 0; i < total; i++) {
    const index = i % options.deviceCount;
    const device = benchDevice(index);
    let prepared = keys.get(index);
    if (prepared === undefined) {
      prepared = { nwk: new AesKey(device.nwkSKey), app: new AesKey(device.appSKey) };
      if (keys.size < 20_000) keys.set(index, prepared);
    }
    const fCnt = options.fCntStart + Math.floor(i / options.deviceCount);
    const payload = new Uint8Array(12);
    new DataView(payload.buffer).setUint32(0, i);
    const phy = buildDataFrame(
      {
        mType: 'UnconfirmedDataUp',
        devAddr: device.devAddr,
        fCtrl: { adr: true, adrAckReq: false, ack: false, classB: false, fPending: false },
        fCnt,
        fPort: 2,
        frmPayload: payload,
      },
      { lorawan: '1.0', nwkSKey: prepared.nwk, appSKey: prepared.app },
    );
    const data = Buffer.from(phy).toString('base64');
    const freq = FREQUENCIES_MHZ[i % FREQUENCIES_MHZ.length]!;
    const copies: Array<[number, Uint8Array]> = [];
    for (let c = 0; c < options.copies; c++) {
      const g = (i + c) % options.gateways;
      const rxpk = {
        tmst: ((i * 1000 + c * 7) >>> 0) % 2 ** 32,
        chan: i % 8,
        rfch: 0,
        freq,
        stat: 1 as const,
        modu: 'LORA' as const,
        datr: 'SF7BW125',
        codr: '4/5',
        rssi: -60 - c * 7,
        lsnr: 9 - c * 2,
        size: phy.length,
        data,
      };
      copies.push([
        g,
        encodePacket({
          type: 'PUSH_DATA',
          version: 2,
          token: i & 0xffff,
          gatewayId: benchGatewayId(g),
          rxpk: [rxpk],
        }),
      ]);
    }
    datagrams[i] = copies;
  }
  say({ phase: 'prepared', uplinks: total, prepareMs: Date.now() - started });

  // Pace: about every millisecond, send what is due by now (the 3 copies of an uplink back to back).
  let sent = 0;
  const begin = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsedS = Number(process.hrtime.bigint() - begin) / 1e9;
      const due = Math.min(total, Math.floor(elapsedS * options.ratePerSecond));
      while (sent < due) {
        for (const [g, datagram] of datagrams[sent]!)
          sockets[g]!.send(datagram, options.port, '127.0.0.1');
        sent++;
      }
      if (sent >= total) resolve();
      // A timer, not setImmediate: spinning would take a core from the server on this machine.
      else setTimeout(tick, 1);
    };
    tick();
  });
  const seconds = Number(process.hrtime.bigint() - begin) / 1e9;
  // Let the last sends leave the socket buffers before closing.
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const socket of sockets) socket.close();
  say({
    phase: 'sent',
    uplinks: sent,
    datagrams: sent * options.copies,
    seconds,
    achievedRate: sent / seconds,
  });
}

main().catch((error: unknown) => {
  say({ phase: 'error', message: (error as Error).message });
  process.exit(1);
});
