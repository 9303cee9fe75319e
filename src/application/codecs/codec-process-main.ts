// The child process of CodecProcess: a CodecEngine serving requests from the parent, one at a
// time, in order. Started with --no-node-snapshot (isolated-vm's requirement on Node 20+). If a
// codec makes V8 abort (some allocations bypass isolated-vm's memory limit), only this process
// dies; the parent starts another.
import { CodecEngine } from './codec-engine.js';
import type { ChildEngineOptions, FromChild, ToChild } from './codec-process-protocol.js';
import { CodecError, isCodecError } from './errors.js';
import type { SandboxedCodec } from './sandboxed-codec.js';

if (process.send === undefined) throw new Error('codec-process-main runs only as a child process');

const options = JSON.parse(process.env['GALET_CODEC_ENGINE'] ?? '{}') as ChildEngineOptions;
const engine = new CodecEngine(options);
const codecs = new Map<string, SandboxedCodec>();

function send(message: FromChild): void {
  process.send!(message);
}

function codecFor(message: ToChild): SandboxedCodec {
  const known = codecs.get(message.codecId);
  if (known !== undefined) return known;
  if (message.source === undefined) {
    throw new CodecError('CODEC_SANDBOX_ERROR', `codec ${message.codecId} is not loaded`);
  }
  const codec = engine.load(message.source);
  codecs.set(message.codecId, codec);
  return codec;
}

function handle(message: ToChild): void {
  let codec: SandboxedCodec;
  try {
    codec = codecFor(message);
  } catch (error) {
    if (!isCodecError(error)) throw error;
    send({ type: 'failed', id: message.id, code: error.code, message: error.message });
    return;
  }
  switch (message.op) {
    case 'load':
      send({ type: 'loaded', id: message.id, signatures: codec.signatures });
      return;
    case 'decodeUplink':
      send({ type: 'outcome', id: message.id, outcome: codec.decodeUplink(message.input) });
      return;
    case 'decodeMany':
      send({ type: 'records', id: message.id, text: codec.decodeManyRecords(message.inputs) });
      return;
    case 'decodeDownlink':
      send({ type: 'outcome', id: message.id, outcome: codec.decodeDownlink(message.input) });
      return;
    case 'encodeDownlink':
      send({ type: 'outcome', id: message.id, outcome: codec.encodeDownlink(message.input) });
      return;
    case 'normalizeUplink':
      send({ type: 'outcome', id: message.id, outcome: codec.normalizeUplink(message.input) });
      return;
  }
}

process.on('message', (message: ToChild) => handle(message));
// The parent is gone: nothing left to serve.
process.on('disconnect', () => {
  engine.dispose();
  process.exit(0);
});
send({ type: 'ready' });
