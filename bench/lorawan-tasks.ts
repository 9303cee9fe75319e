// The tasks of `npm run bench -- lorawan`, each run in a worker of its own (see lorawan.ts).
// Frames per second for decode + MIC check + decrypt of a realistic LoRaWAN 1.0.x uplink
// (12-byte FRMPayload): Galet, the npm package lora-packet doing the same work, and the raw cost
// of the AES block operations that work needs through node:crypto (the floor).
import { createCipheriv } from 'node:crypto';
import loraPacketModule from 'lora-packet';
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

export const FRAMES_PER_CALL = 1000;

const nwkSKeyBytes = Buffer.from('44024241ed4ce9a68c6a8bc055233fd3', 'hex');
const appSKeyBytes = Buffer.from('ec925802ae430ca77fd3dd73cb2cc588', 'hex');
const plaintext = Buffer.from('0a1b2c3d4e5f60718293a4b5', 'hex'); // 12 bytes, e.g. a meter index + flags
const devAddr = 0x260b1234;
const fCnt = 4242;

export const frame = buildDataFrame(
  {
    mType: 'UnconfirmedDataUp',
    devAddr,
    fCtrl: { adr: true, adrAckReq: false, ack: false, classB: false, fPending: false },
    fCnt,
    fPort: 2,
    frmPayload: plaintext,
  },
  // Prepared keys here too: the code under test only ever sees AesKey objects, as in the server.
  { lorawan: '1.0', nwkSKey: new AesKey(nwkSKeyBytes), appSKey: new AesKey(appSKeyBytes) },
);

function fail(what: string): never {
  throw new Error(`benchmark sanity check failed: ${what}`);
}

/** Galet as the network/application server runs it: keys prepared once per session. */
export function galetPreparedKeys(keys: DataSessionKeys): () => void {
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

export function loraPacketRun(): void {
  for (let i = 0; i < FRAMES_PER_CALL; i++) {
    const packet = loraPacket.fromWire(Buffer.from(frame));
    if (!loraPacket.verifyMIC(packet, nwkSKeyBytes)) fail('lora-packet MIC');
    const out = loraPacket.decrypt(packet, appSKeyBytes, nwkSKeyBytes);
    if (out[11] !== plaintext[11]) fail('lora-packet plaintext');
  }
}

// The floor: the AES work itself with pre-scheduled keys. The MIC is a CMAC over B0 (16 bytes) +
// 25-byte frame = 3 blocks chained under NwkSKey; decryption is 1 keystream block under AppSKey.
export function floorRun(): () => void {
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

export function floorPerBlockRun(): () => void {
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

/** Frames per second of `run` (FRAMES_PER_CALL frames per call) over about `ms` milliseconds. */
export function measure(run: () => void, ms: number): number {
  let calls = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(ms) * 1_000_000n;
  let now = started;
  while (now < deadline) {
    run();
    calls++;
    now = process.hrtime.bigint();
  }
  return (calls * FRAMES_PER_CALL) / (Number(now - started) / 1e9);
}

/** Builds a task by name, with keys prepared as the server prepares them. */
export function taskByName(name: string): () => void {
  switch (name) {
    case 'galet':
      return galetPreparedKeys({
        lorawan: '1.0',
        nwkSKey: new AesKey(nwkSKeyBytes),
        appSKey: new AesKey(appSKeyBytes),
      });
    case 'lora-packet':
      return loraPacketRun;
    case 'floor':
      return floorRun();
    case 'floor-per-block':
      return floorPerBlockRun();
    default:
      throw new Error(`unknown task ${name}`);
  }
}
