// Frames per second for decode + MIC check + decrypt of a realistic LoRaWAN 1.0.x uplink
// (12-byte FRMPayload): Galet, the npm package lora-packet doing the same work, and the raw cost
// of the AES block operations that work needs through node:crypto (the floor).
import { createCipheriv } from 'node:crypto';
import { cpus } from 'node:os';
import loraPacketModule from 'lora-packet';
import { Bench } from 'tinybench';
import { AesKey } from '../src/lorawan/crypto/aes.js';
import {
  buildDataFrame,
  type DataSessionKeys,
  decryptDataFrame,
  verifyDataMic,
} from '../src/lorawan/data-frame.js';
import { type DataFrame, decodePhyPayloadWithMicInput } from '../src/lorawan/phy-payload.js';

// lora-packet's typings declare an ES default export, but at run time module.exports is the API.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const FRAMES_PER_CALL = 1000;

const nwkSKeyBytes = Buffer.from('44024241ed4ce9a68c6a8bc055233fd3', 'hex');
const appSKeyBytes = Buffer.from('ec925802ae430ca77fd3dd73cb2cc588', 'hex');
const plaintext = Buffer.from('0a1b2c3d4e5f60718293a4b5', 'hex'); // 12 bytes, e.g. a meter index + flags
const devAddr = 0x260b1234;
const fCnt = 4242;

const frame = buildDataFrame(
  {
    mType: 'UnconfirmedDataUp',
    devAddr,
    fCtrl: { adr: true, adrAckReq: false, ack: false, classB: false, fPending: false },
    fCnt,
    fPort: 2,
    frmPayload: plaintext,
  },
  { lorawan: '1.0', nwkSKey: nwkSKeyBytes, appSKey: appSKeyBytes },
);

function fail(what: string): never {
  throw new Error(`benchmark sanity check failed: ${what}`);
}

/** Galet as the network/application server runs it: keys prepared once per session. */
function galetPreparedKeys(keys: DataSessionKeys): () => void {
  return () => {
    for (let i = 0; i < FRAMES_PER_CALL; i++) {
      const { payload, micInput } = decodePhyPayloadWithMicInput(frame);
      const data = payload as DataFrame;
      if (!verifyDataMic(data, micInput, keys, data.fCnt)) fail('Galet MIC');
      const out = decryptDataFrame(data, keys, data.fCnt).frmPayload!;
      if (out[11] !== plaintext[11]) fail('Galet plaintext');
    }
  };
}

function loraPacketRun(): void {
  for (let i = 0; i < FRAMES_PER_CALL; i++) {
    const packet = loraPacket.fromWire(Buffer.from(frame));
    if (!loraPacket.verifyMIC(packet, nwkSKeyBytes)) fail('lora-packet MIC');
    const out = loraPacket.decrypt(packet, appSKeyBytes, nwkSKeyBytes);
    if (out[11] !== plaintext[11]) fail('lora-packet plaintext');
  }
}

// The floor: the AES work itself with pre-scheduled keys. The MIC is a CMAC over B0 (16 bytes) +
// 25-byte frame = 3 blocks chained under NwkSKey; decryption is 1 keystream block under AppSKey.
function floorRun(): () => void {
  const cbc = createCipheriv('aes-128-cbc', nwkSKeyBytes, Buffer.alloc(16));
  cbc.setAutoPadding(false);
  const ecb = createCipheriv('aes-128-ecb', appSKeyBytes, null);
  ecb.setAutoPadding(false);
  const threeBlocks = Buffer.alloc(48);
  const oneBlock = Buffer.alloc(16);
  let sink = 0;
  return () => {
    for (let i = 0; i < FRAMES_PER_CALL; i++) {
      sink ^= cbc.update(threeBlocks)[47]! ^ ecb.update(oneBlock)[0]!;
    }
    if (sink === 0x1ff) fail('unreachable');
  };
}

function floorPerBlockRun(): () => void {
  const ecbNwk = createCipheriv('aes-128-ecb', nwkSKeyBytes, null);
  ecbNwk.setAutoPadding(false);
  const ecbApp = createCipheriv('aes-128-ecb', appSKeyBytes, null);
  ecbApp.setAutoPadding(false);
  const block = Buffer.alloc(16);
  let sink = 0;
  return () => {
    for (let i = 0; i < FRAMES_PER_CALL; i++) {
      sink ^= ecbNwk.update(block)[0]! ^ ecbNwk.update(block)[0]! ^ ecbNwk.update(block)[0]!;
      sink ^= ecbApp.update(block)[0]!;
    }
    if (sink === 0x1ff) fail('unreachable');
  };
}

export async function runLorawanBench(): Promise<void> {
  const prepared: DataSessionKeys = {
    lorawan: '1.0',
    nwkSKey: new AesKey(nwkSKeyBytes),
    appSKey: new AesKey(appSKeyBytes),
  };
  const rawBytes: DataSessionKeys = {
    lorawan: '1.0',
    nwkSKey: nwkSKeyBytes,
    appSKey: appSKeyBytes,
  };
  const tasks: Array<[string, () => void]> = [
    ['galet (session keys prepared)', galetPreparedKeys(prepared)],
    ['galet (raw key bytes each frame)', galetPreparedKeys(rawBytes)],
    ['lora-packet 0.9.3', loraPacketRun],
    ['AES floor (2 calls: CBC 3 blocks + ECB 1 block)', floorRun()],
    ['AES floor (4 single-block ECB calls)', floorPerBlockRun()],
  ];
  const bench = new Bench({ name: 'lorawan', time: 2000, warmupTime: 500 });
  for (const [name, fn] of tasks) bench.add(name, fn);
  console.log(
    `lorawan: decode + MIC check + decrypt of a ${frame.length}-byte 1.0.x uplink (12-byte FRMPayload)`,
  );
  console.log(
    `node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'}, ${FRAMES_PER_CALL} frames per sample`,
  );
  await bench.run();

  const framesPerSecond = new Map<string, number>();
  const rows = bench.tasks.map((task) => {
    const result = task.result;
    if (result === undefined || result.error !== undefined) {
      fail(`${task.name} did not complete: ${result?.error?.message ?? 'no result'}`);
    }
    const perSecond = result.throughput.mean * FRAMES_PER_CALL;
    framesPerSecond.set(task.name, perSecond);
    return {
      task: task.name,
      'frames/s': Math.round(perSecond).toLocaleString('en-US'),
      'µs/frame': (1e6 / perSecond).toFixed(3),
      '± %': result.latency.rme.toFixed(2),
      samples: result.latency.samples.length,
    };
  });
  console.table(rows);
  const galet = framesPerSecond.get(tasks[0]![0])!;
  const lp = framesPerSecond.get(tasks[2]![0])!;
  const floor = framesPerSecond.get(tasks[3]![0])!;
  const perBlockFloor = framesPerSecond.get(tasks[4]![0])!;
  console.log(`galet / lora-packet: ${(galet / lp).toFixed(1)}x (goal >= 10x)`);
  console.log(
    `galet time / AES floor time: ${(floor / galet).toFixed(2)}x against the 2-call floor, ` +
      `${(perBlockFloor / galet).toFixed(2)}x against the per-block floor (goal <= 2x)`,
  );
}
