import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
// Types only: the codecs module (isolated-vm, the sandbox) is loaded by the command's action,
// not by every `galet` command (about 0.1 s each).
import type {
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  JsonValue,
  PayloadCodec,
  UplinkInput,
} from '../application/codecs/index.js';
import { bytesToHex, hexToBytes } from '../lorawan/bytes.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

export function registerCodecCommands(program: Command): void {
  const codec = program.command('codec').description('run payload codecs (the codec test bench)');
  codec
    .command('run')
    .description(
      'run a JavaScript codec (TTN / TS013, ChirpStack, or legacy Decoder/Encoder) in the sandbox ' +
        'and print its result as JSON: {"data", "warnings", "errors"} for a decode, ' +
        '{"bytes", "fPort", "warnings", "errors"} for --encode. ' +
        'With --repeat N: {"runs": N, "perSecond": x}.',
    )
    .option('--file <path>', 'the codec source (JavaScript)')
    .option('--cayenne-lpp', 'use the built-in Cayenne LPP codec instead of --file')
    .option('--fport <n>', 'FPort of the frame (1-223 for application data)')
    .option('--hex <hex>', 'payload to decode (decrypted FRMPayload, hex)')
    .option('--downlink', 'decode the payload as a downlink (decodeDownlink)')
    .option('--encode <json>', 'encode this data into a downlink (encodeDownlink)')
    .option('--recv-time <iso>', 'recvTime passed to decodeUplink (default: now)')
    .option('--variables <json>', 'device variables, a JSON object of strings (ChirpStack)')
    .option('--repeat <n>', 'run the decode N times and print the rate instead of the result')
    .option('--batch <size>', 'with --repeat: decode in batches of this many frames')
    .option('--timeout-ms <ms>', 'time cap of one sandbox call', '100')
    .option('--memory-mib <mib>', 'memory cap of the codec isolate', '32')
    .action((options: Record<string, unknown>) => runCodec(options));
}

/**
 * The codec runs in a CodecProcess (a child process), so that a codec that makes V8 abort is
 * reported like any other failure; `--repeat` then measures the in-process sandbox, the one the
 * child itself uses.
 */
async function runCodec(options: Record<string, unknown>): Promise<void> {
  const { CodecEngine, CodecProcess, isCodecError } = await import(
    '../application/codecs/index.js'
  );
  const limits = {
    timeoutMs: readPositive(options['timeoutMs'], '--timeout-ms'),
    memoryLimitMiB: readPositive(options['memoryMib'], '--memory-mib'),
  };
  const variables = readVariables(options['variables']);
  const fPort =
    options['fport'] === undefined ? undefined : readInteger(options['fport'], 8, '--fport');
  const encode = options['encode'];
  if (encode !== undefined && options['hex'] !== undefined) {
    throw new CliInputError('give --hex or --encode, not both');
  }
  if (encode === undefined && typeof options['hex'] !== 'string') {
    throw new CliInputError('missing --hex (or --encode)');
  }
  if (encode === undefined && fPort === undefined) throw new CliInputError('missing --fport');
  const bytes = encode === undefined ? hexToBytes(String(options['hex']), '--hex') : undefined;
  const recvTime = readRecvTime(options['recvTime']);
  const repeat =
    options['repeat'] === undefined ? undefined : readPositive(options['repeat'], '--repeat');
  const batch = options['batch'] === undefined ? 0 : readPositive(options['batch'], '--batch');
  const source = readSource(options);

  const engine = new CodecEngine(limits);
  const host = source === undefined ? undefined : await CodecProcess.start(limits);
  try {
    const codec: AnyCodec = source === undefined ? engine.cayenneLpp() : await host!.load(source);
    if (encode !== undefined) {
      const data = readJson(encode, '--encode') as JsonValue;
      const outcome = await codec.encodeDownlink({
        data,
        ...(fPort === undefined ? {} : { fPort }),
        ...(variables === undefined ? {} : { variables }),
      });
      printJson(encodeResult(outcome));
      return;
    }
    if (options['downlink'] === true) {
      printJson(decodeResult(await codec.decodeDownlink({ bytes: bytes!, fPort: fPort! })));
      return;
    }
    const input: UplinkInput = {
      bytes: bytes!,
      fPort: fPort!,
      ...(recvTime === undefined ? {} : { recvTime }),
      ...(variables === undefined ? {} : { variables }),
    };
    const result = decodeResult(await codec.decodeUplink(input));
    if (repeat === undefined) {
      printJson(result);
      return;
    }
    const local = source === undefined ? engine.cayenneLpp() : engine.load(source);
    printJson({ runs: repeat, perSecond: Math.round(measure(local, input, repeat, batch)) });
  } catch (error) {
    if (isCodecError(error)) throw new CliInputError(`${error.message} (${error.code})`);
    throw error;
  } finally {
    engine.dispose();
    await host?.close();
  }
}

/** What the command needs of a codec, in-process (PayloadCodec) or in the child (RemoteCodec). */
interface AnyCodec {
  decodeUplink(input: UplinkInput): DecodeOutcome | Promise<DecodeOutcome>;
  decodeDownlink(input: DownlinkDecodeInput): DecodeOutcome | Promise<DecodeOutcome>;
  encodeDownlink(input: DownlinkEncodeInput): EncodeOutcome | Promise<EncodeOutcome>;
}

/** The source of --file; undefined for --cayenne-lpp. */
function readSource(options: Record<string, unknown>): string | undefined {
  if (options['cayenneLpp'] === true) {
    if (options['file'] !== undefined) {
      throw new CliInputError('give --file or --cayenne-lpp, not both');
    }
    return undefined;
  }
  const file = options['file'];
  if (typeof file !== 'string') throw new CliInputError('missing --file (or --cayenne-lpp)');
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliInputError(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/** Frames per second through the sandbox: single calls, or `decodeMany` in batches. */
function measure(codec: PayloadCodec, input: UplinkInput, runs: number, batch: number): number {
  const started = process.hrtime.bigint();
  if (batch === 0) {
    for (let i = 0; i < runs; i++) codec.decodeUplink(input);
  } else {
    const frames = new Array<UplinkInput>(Math.min(batch, runs)).fill(input);
    for (let done = 0; done < runs; done += frames.length) {
      codec.decodeMany(runs - done >= frames.length ? frames : frames.slice(0, runs - done));
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return runs / Math.max(seconds, 1e-9);
}

/** The codec's result object; a failure outside the codec's own errors is a one-line error. */
function decodeResult(outcome: DecodeOutcome): Record<string, unknown> {
  if (outcome.ok) return { data: outcome.data, warnings: outcome.warnings, errors: [] };
  return { warnings: outcome.warnings, errors: reportedErrors(outcome) };
}

function encodeResult(outcome: EncodeOutcome): Record<string, unknown> {
  if (outcome.ok) {
    return {
      bytes: bytesToHex(outcome.bytes),
      fPort: outcome.fPort,
      warnings: outcome.warnings,
      errors: [],
    };
  }
  return { warnings: outcome.warnings, errors: reportedErrors(outcome) };
}

function reportedErrors(outcome: Extract<DecodeOutcome | EncodeOutcome, { ok: false }>): string[] {
  const { error } = outcome;
  if (error.code === 'CODEC_REPORTED_ERRORS') return error.errors ?? [error.message];
  throw new CliInputError(`${error.message} (${error.code})`);
}

function readPositive(value: unknown, what: string): number {
  const n = readInteger(value, 31, what);
  if (n === 0) throw new CliInputError(`${what} must be at least 1`);
  return n;
}

function readJson(value: unknown, what: string): unknown {
  try {
    return JSON.parse(String(value));
  } catch {
    throw new CliInputError(`${what} is not valid JSON`);
  }
}

function readVariables(value: unknown): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const parsed = readJson(value, '--variables');
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    Array.isArray(parsed) ||
    !Object.values(parsed).every((v) => typeof v === 'string')
  ) {
    throw new CliInputError('--variables must be a JSON object of strings');
  }
  return parsed as Record<string, string>;
}

function readRecvTime(value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const time = new Date(String(value));
  if (Number.isNaN(time.getTime())) {
    throw new CliInputError(`--recv-time must be an ISO-8601 time, got ${String(value)}`);
  }
  return time;
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
