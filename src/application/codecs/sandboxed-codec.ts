import ivm from 'isolated-vm';
import { CodecError, isCodecError } from './errors.js';
import {
  decodeOutcome,
  encodeOutcome,
  failed,
  failureRecordText,
  isApplicationFPort,
  malformed,
  outcomesFromRecordsText,
  parseRecordText,
  RECORD,
} from './records.js';
import { SANDBOX_PRELUDE } from './sandbox-runtime.js';
import type {
  CodecFailure,
  CodecSignatures,
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  JsonValue,
  NormalizeInput,
  PayloadCodec,
  UplinkInput,
} from './types.js';

/** The caps every call of a sandboxed codec runs under. */
export interface CodecLimits {
  /** Time cap of one sandbox call (a single frame, or one batch of frames). */
  timeoutMs: number;
  /** Heap cap of each codec's isolate. */
  memoryLimitMiB: number;
  /** Cap on the JSON of one result (characters), and on the bytes of one encoded downlink. */
  maxOutputChars: number;
  /** Most frames `decodeMany` packs into one sandbox call. */
  maxBatchSize: number;
}

/** What the engine counts; exposed as metrics. */
export interface CodecCounters {
  isolatesCreated: number;
  isolatesEvicted: number;
  timeouts: number;
  memoryLimitHits: number;
  sandboxErrors: number;
  batchFallbacks: number;
}

/** How a codec tells its engine about its isolate (the engine bounds how many are live). */
export interface SandboxHost {
  readonly limits: CodecLimits;
  readonly counters: CodecCounters;
  /** Clock for `recvTime` when an input has none (milliseconds since the epoch). */
  readonly now: () => number;
  /** The codec's isolate was used: most recently used now. */
  touched(codec: SandboxedCodec): void;
  /** The codec's isolate is gone (disposed after a failure, or evicted). */
  released(codec: SandboxedCodec): void;
}

const TIMED_OUT = 'Script execution timed out.';
const UPLINK_DECODERS = ['decodeUplink', 'Decoder', 'Decode'] as const;
const DOWNLINK_ENCODERS = ['encodeDownlink', 'Encoder', 'Encode'] as const;

interface LiveSandbox {
  isolate: ivm.Isolate;
  decodeUplink: ivm.Reference;
  decodeUplinkMany: ivm.Reference;
  decodeDownlink: ivm.Reference;
  encodeDownlink: ivm.Reference;
  normalizeUplink: ivm.Reference;
}

/** One sandbox call's worth of frames (see #pack). */
interface PackedBatch {
  /** Arguments of the harness's decodeUplinkMany; undefined when no input is left to run. */
  args: unknown[] | undefined;
  /** Indexes (in the caller's inputs) of the frames in `args`. */
  indexes: number[];
  /** Record text per frame of the batch, by position in the batch. */
  texts: (string | undefined)[];
  fail(failure: CodecFailure): void;
  done(raw: unknown): void;
  text(): string;
}

interface CreatedSandbox {
  live: LiveSandbox;
  signatures: CodecSignatures;
}

/**
 * A JavaScript codec in its own V8 isolate (isolated-vm): compiled once, kept warm, and
 * recreated from its source after a timeout, a memory overrun or an eviction by the engine's
 * LRU. Create through `CodecEngine.load`.
 */
export class SandboxedCodec implements PayloadCodec {
  readonly kind = 'javascript' as const;
  readonly signatures: CodecSignatures;
  readonly #source: string;
  readonly #host: SandboxHost;
  /** Single calls pass primitives only; a batch passes typed arrays, copied in. */
  readonly #callOptions: { timeout: number };
  readonly #batchOptions: { arguments: { copy: true }; timeout: number };
  #live: LiveSandbox | undefined;
  #inFlight = 0;
  #batchSize: number;

  /** Compiles and runs the source once; throws a CodecError when it cannot serve any call. */
  constructor(
    readonly id: string,
    source: string,
    host: SandboxHost,
  ) {
    this.#source = source;
    this.#host = host;
    this.#callOptions = { timeout: host.limits.timeoutMs };
    this.#batchOptions = { arguments: { copy: true }, timeout: host.limits.timeoutMs };
    this.#batchSize = host.limits.maxBatchSize;
    const created = createSandbox(source, host.limits);
    host.counters.isolatesCreated++;
    const { signatures } = created;
    if (
      signatures.uplinkDecoder === null &&
      signatures.downlinkEncoder === null &&
      signatures.downlinkDecoder === null &&
      signatures.uplinkNormalizer === null
    ) {
      created.live.isolate.dispose();
      throw new CodecError(
        'CODEC_FUNCTION_MISSING',
        'the codec defines none of decodeUplink, encodeDownlink, decodeDownlink, normalizeUplink, ' +
          'Decoder, Encoder, Decode, Encode',
      );
    }
    this.signatures = signatures;
    this.#live = created.live;
    host.touched(this);
  }

  /** True while the codec holds a live isolate. */
  get isLive(): boolean {
    return this.#live !== undefined;
  }

  /** True while a call runs (an async batch in particular): the engine does not evict it. */
  get isBusy(): boolean {
    return this.#inFlight > 0;
  }

  /** Current frames per sandbox call of `decodeMany` (halved after a batch times out). */
  get batchSize(): number {
    return this.#batchSize;
  }

  /** Frees the isolate; the next call recreates it from the source. */
  evict(): void {
    const live = this.#live;
    if (live === undefined) return;
    this.#live = undefined;
    if (!live.isolate.isDisposed) live.isolate.dispose();
    this.#host.released(this);
  }

  decodeUplink(input: UplinkInput): DecodeOutcome {
    return decodeOutcome(parseRecordText(this.#decodeOneText(input)));
  }

  decodeMany(inputs: readonly UplinkInput[]): DecodeOutcome[] {
    return outcomesFromRecordsText(this.decodeManyRecords(inputs), inputs.length);
  }

  /** `decodeMany` off the event loop: the isolate runs in isolated-vm's own thread. */
  async decodeManyAsync(inputs: readonly UplinkInput[]): Promise<DecodeOutcome[]> {
    return outcomesFromRecordsText(await runAsync(this.#decodeManySteps(inputs)), inputs.length);
  }

  /**
   * `decodeMany` as record text (records.ts), one record per input: the codec process sends
   * this text as it is, and its parent parses it once.
   */
  decodeManyRecords(inputs: readonly UplinkInput[]): string {
    return runSync(this.#decodeManySteps(inputs));
  }

  decodeDownlink(input: DownlinkDecodeInput): DecodeOutcome {
    const invalid = checkBytesAndPort(input.bytes, input.fPort);
    if (invalid !== undefined) return failed(invalid);
    return this.#call(
      (live) => live.decodeDownlink,
      [latin1(input.bytes), input.fPort],
      decodeOutcome,
    );
  }

  normalizeUplink(input: NormalizeInput): DecodeOutcome {
    const text = jsonText(input.data);
    if (typeof text !== 'string') return failed(text);
    return this.#call((live) => live.normalizeUplink, [text], decodeOutcome);
  }

  encodeDownlink(input: DownlinkEncodeInput): EncodeOutcome {
    if (input.fPort !== undefined && !isApplicationFPort(input.fPort)) {
      return failed(invalidInput(`fPort ${String(input.fPort)} is not an integer 1-223`));
    }
    if (input.defaultFPort !== undefined && !isApplicationFPort(input.defaultFPort)) {
      return failed(
        invalidInput(`defaultFPort ${String(input.defaultFPort)} is not an integer 1-223`),
      );
    }
    const text = jsonText(input.data);
    if (typeof text !== 'string') return failed(text);
    return this.#call(
      (live) => live.encodeDownlink,
      [text, input.fPort ?? null, variablesText(input.variables)],
      (record) => encodeOutcome(record, input.fPort ?? input.defaultFPort),
    );
  }

  #call<T extends DecodeOutcome | EncodeOutcome>(
    entry: (live: LiveSandbox) => ivm.Reference,
    args: unknown[],
    toOutcome: (record: unknown[] | undefined) => T,
  ): T {
    return runSync(
      this.#callSteps(
        entry,
        args,
        (raw) => toOutcome(parseRecordText(raw)),
        (failure) => failed(failure) as T,
      ),
    );
  }

  /**
   * One call of a codec entry with primitive arguments: `toResult` gives the result of what it
   * returns, `onFailure` that of a failure outside the codec's code (no isolate, a cap hit).
   */
  *#callSteps<T>(
    entry: (live: LiveSandbox) => ivm.Reference,
    args: unknown[],
    toResult: (raw: unknown) => T,
    onFailure: (failure: CodecFailure) => T,
  ): SandboxSteps<T> {
    const live = this.#acquire();
    if (!('isolate' in live)) return onFailure(live);
    this.#inFlight++;
    try {
      return toResult(yield { entry: entry(live), args, options: this.#callOptions });
    } catch (error) {
      return onFailure(this.#crashed(live, error));
    } finally {
      this.#inFlight--;
    }
  }

  #acquire(): LiveSandbox | CodecFailure {
    const current = this.#live;
    if (current !== undefined) {
      if (!current.isolate.isDisposed) {
        this.#host.touched(this);
        return current;
      }
      this.#live = undefined;
      this.#host.released(this);
    }
    try {
      const created = createSandbox(this.#source, this.#host.limits);
      this.#host.counters.isolatesCreated++;
      this.#live = created.live;
      this.#host.touched(this);
      return created.live;
    } catch (error) {
      if (isCodecError(error)) {
        return { code: error.code, message: `the codec could not be reloaded: ${error.message}` };
      }
      this.#host.counters.sandboxErrors++;
      return {
        code: 'CODEC_SANDBOX_ERROR',
        message: `cannot create a sandbox: ${messageOf(error)}`,
      };
    }
  }

  /** A call failed outside the harness (time or memory cap, sandbox error): drop the isolate. */
  #crashed(live: LiveSandbox, error: unknown): CodecFailure {
    const failure = classifySandboxError(error, this.#host.limits, live.isolate.isDisposed);
    const counters = this.#host.counters;
    if (failure.code === 'CODEC_TIMEOUT') counters.timeouts++;
    else if (failure.code === 'CODEC_MEMORY_LIMIT') counters.memoryLimitHits++;
    else counters.sandboxErrors++;
    if (this.#live === live) {
      this.#live = undefined;
      this.#host.released(this);
    }
    if (!live.isolate.isDisposed) live.isolate.dispose();
    return failure;
  }

  /**
   * A batch failed outside the harness (time or memory cap): the isolate is dropped and the
   * batch's frames (if more than one) are run again one by one, so that only the guilty frame
   * fails.
   */
  #batchFailed(live: LiveSandbox, error: unknown): CodecFailure {
    this.#host.counters.batchFallbacks++;
    return this.#crashed(live, error);
  }

  /**
   * A batch ran out of time but no single frame did: the codec is just slow for batches this
   * big, so later batches are half the size.
   */
  #adaptBatchSize(failure: CodecFailure, texts: (string | undefined)[]): void {
    if (failure.code !== 'CODEC_TIMEOUT') return;
    const guilty = texts.some(
      (text) => text?.startsWith(`[${RECORD.hostFailure},"CODEC_TIMEOUT"`) === true,
    );
    if (!guilty) this.#batchSize = Math.max(1, this.#batchSize >> 1);
  }

  /** One uplink as record text; failures outside the codec's code are records too. */
  #decodeOneText(input: UplinkInput): string {
    const invalid = checkBytesAndPort(input.bytes, input.fPort);
    if (invalid !== undefined) return failureRecordText(invalid);
    return runSync(this.#decodeOneSteps(input));
  }

  /** `#decodeOneText` of an input checked already (`#pack`). */
  #decodeOneSteps(input: UplinkInput): SandboxSteps<string> {
    return this.#callSteps(
      (live) => live.decodeUplink,
      this.#singleArgs(input),
      (raw) => (typeof raw === 'string' ? raw : failureRecordText(malformed())),
      failureRecordText,
    );
  }

  /** The steps of `decodeManyRecords`, batch by batch (see `SandboxSteps`). */
  *#decodeManySteps(inputs: readonly UplinkInput[]): SandboxSteps<string> {
    const parts: string[] = [];
    for (let start = 0; start < inputs.length; ) {
      const end = Math.min(inputs.length, start + this.#batchSize);
      const batch = this.#pack(inputs, start, end);
      if (batch.args !== undefined) {
        const live = this.#acquire();
        if (!('isolate' in live)) {
          batch.fail(live);
        } else {
          this.#inFlight++;
          try {
            batch.done(
              yield { entry: live.decodeUplinkMany, args: batch.args, options: this.#batchOptions },
            );
          } catch (error) {
            const failure = this.#batchFailed(live, error);
            if (batch.indexes.length === 1) batch.fail(failure);
            else {
              for (const index of batch.indexes) {
                batch.texts[index - start] = yield* this.#decodeOneSteps(inputs[index]!);
              }
              this.#adaptBatchSize(failure, batch.texts);
            }
          } finally {
            this.#inFlight--;
          }
        }
      }
      parts.push(batch.text());
      start = end;
    }
    return joinRecordTexts(parts);
  }

  #singleArgs(input: UplinkInput): unknown[] {
    return [
      latin1(input.bytes),
      input.fPort,
      recvMs(input.recvTime, this.#host.now),
      variablesText(input.variables),
    ];
  }

  /**
   * Packs inputs[start, end) into one buffer plus lengths, ports and times. Inputs Galet refuses
   * get their record at once and are left out of the sandbox call.
   */
  #pack(inputs: readonly UplinkInput[], start: number, end: number): PackedBatch {
    const texts = new Array<string | undefined>(end - start);
    const indexes: number[] = [];
    let total = 0;
    let withVariables = false;
    for (let i = start; i < end; i++) {
      const input = inputs[i]!;
      const invalid = checkBytesAndPort(input.bytes, input.fPort);
      if (invalid !== undefined) {
        texts[i - start] = failureRecordText(invalid);
        continue;
      }
      indexes.push(i);
      total += input.bytes.length;
      if (input.variables !== undefined) withVariables = true;
    }
    let args: unknown[] | undefined;
    if (indexes.length > 0) {
      const buffer = new Uint8Array(total);
      const lengths = new Uint32Array(indexes.length);
      const fPorts = new Uint8Array(indexes.length);
      const recvTimes = new Float64Array(indexes.length);
      const variables = withVariables ? new Array<unknown>(indexes.length) : undefined;
      let offset = 0;
      for (let k = 0; k < indexes.length; k++) {
        const input = inputs[indexes[k]!]!;
        buffer.set(input.bytes, offset);
        offset += input.bytes.length;
        lengths[k] = input.bytes.length;
        fPorts[k] = input.fPort;
        recvTimes[k] = recvMs(input.recvTime, this.#host.now);
        if (variables !== undefined) variables[k] = input.variables ?? null;
      }
      args = [buffer, lengths, fPorts, recvTimes, variables];
    }
    let whole: string | undefined;
    return {
      args,
      indexes,
      texts,
      fail: (failure) => {
        for (const index of indexes) texts[index - start] = failureRecordText(failure);
      },
      done: (raw) => {
        if (indexes.length === end - start && typeof raw === 'string') {
          whole = raw; // the common case: every input ran, the harness's text is the batch's
          return;
        }
        const records = parseRecordText(raw);
        indexes.forEach((index, k) => {
          const record = records?.[k];
          texts[index - start] =
            records !== undefined && records.length === indexes.length && Array.isArray(record)
              ? JSON.stringify(record)
              : failureRecordText(malformed());
        });
      },
      text: () => whole ?? `[${texts.join(',')}]`,
    };
  }
}

/** `recvTime` as milliseconds since the epoch; `now()` when the input has none. */
export function recvMs(recvTime: Date | number | undefined, now: () => number): number {
  if (recvTime === undefined) return now();
  return typeof recvTime === 'number' ? recvTime : recvTime.getTime();
}

/** A call into the sandbox that a `SandboxSteps` routine asks its driver to make. */
interface SandboxCall {
  entry: ivm.Reference;
  args: unknown[];
  options: { timeout: number; arguments?: { copy: true } };
}

/**
 * A routine of sandbox calls written once for both drivers: it yields each call and gets back
 * what the call returned, or has the call's error thrown where it yielded. `runSync` makes the
 * calls on this thread, `runAsync` in isolated-vm's own.
 */
type SandboxSteps<R> = Generator<SandboxCall, R, unknown>;

function runSync<R>(steps: SandboxSteps<R>): R {
  let step = steps.next();
  while (!step.done) {
    const { entry, args, options } = step.value;
    let raw: unknown;
    try {
      raw = entry.applySync(undefined, args, options);
    } catch (error) {
      step = steps.throw(error);
      continue;
    }
    step = steps.next(raw);
  }
  return step.value;
}

async function runAsync<R>(steps: SandboxSteps<R>): Promise<R> {
  let step = steps.next();
  while (!step.done) {
    const { entry, args, options } = step.value;
    let raw: unknown;
    try {
      raw = await entry.apply(undefined, args, options);
    } catch (error) {
      step = steps.throw(error);
      continue;
    }
    step = steps.next(raw);
  }
  return step.value;
}

function createSandbox(source: string, limits: CodecLimits): CreatedSandbox {
  const isolate = new ivm.Isolate({ memoryLimit: limits.memoryLimitMiB });
  try {
    // Compiling runs none of the codec's code; it gives syntax errors with their line:column.
    try {
      isolate.compileScriptSync(source, { filename: 'codec.js' }).release();
    } catch (error) {
      throw new CodecError('CODEC_COMPILE_ERROR', compileMessage(error));
    }
    const context = isolate.createContextSync();
    const load = isolate
      .compileScriptSync(SANDBOX_PRELUDE, { filename: 'galet-prelude.js' })
      .runSync(context, { reference: true, release: true, timeout: limits.timeoutMs });
    let entries: ivm.Reference;
    try {
      entries = load.applySync(undefined, [source, limits.maxOutputChars], {
        result: { reference: true },
        timeout: limits.timeoutMs,
      }) as ivm.Reference;
    } catch (error) {
      const failure = classifySandboxError(error, limits, isolate.isDisposed);
      throw new CodecError(failure.code, `the codec's top-level code failed: ${failure.message}`);
    }
    const failure = entries.getSync('failure');
    if (failure !== '') {
      const outcome = decodeOutcome(parseRecordText(failure));
      const message = outcome.ok ? 'unknown failure' : outcome.error.message;
      throw new CodecError('CODEC_THREW', `the codec's top-level code threw: ${message}`);
    }
    const signatures = parseSignatures(entries.getSync('signatures'));
    const entry = (name: string): ivm.Reference =>
      entries.getSync(name, { reference: true }) as ivm.Reference;
    return {
      live: {
        isolate,
        decodeUplink: entry('decodeUplink'),
        decodeUplinkMany: entry('decodeUplinkMany'),
        decodeDownlink: entry('decodeDownlink'),
        encodeDownlink: entry('encodeDownlink'),
        normalizeUplink: entry('normalizeUplink'),
      },
      signatures,
    };
  } catch (error) {
    if (!isolate.isDisposed) isolate.dispose();
    if (isCodecError(error)) throw error;
    const failure = classifySandboxError(error, limits, false);
    throw new CodecError(failure.code, `cannot set up the codec's sandbox: ${failure.message}`);
  }
}

function parseSignatures(value: unknown): CodecSignatures {
  const parsed = typeof value === 'string' ? (JSON.parse(value) as Record<string, unknown>) : {};
  const pick = <T extends string>(found: unknown, allowed: readonly T[]): T | null =>
    allowed.includes(found as T) ? (found as T) : null;
  return {
    uplinkDecoder: pick(parsed['uplinkDecoder'], UPLINK_DECODERS),
    downlinkEncoder: pick(parsed['downlinkEncoder'], DOWNLINK_ENCODERS),
    downlinkDecoder: pick(parsed['downlinkDecoder'], ['decodeDownlink'] as const),
    uplinkNormalizer: pick(parsed['uplinkNormalizer'], ['normalizeUplink'] as const),
  };
}

function compileMessage(error: unknown): string {
  const message = describeError(error);
  const hint = /\b(export|import)\b/.test(message)
    ? ' (ES module syntax is not supported: declare the functions at the top level instead)'
    : '';
  return `the codec does not compile: ${message}${hint}`;
}

function classifySandboxError(
  error: unknown,
  limits: CodecLimits,
  isolateDisposed: boolean,
): CodecFailure {
  const message = messageOf(error);
  if (message === TIMED_OUT) {
    return {
      code: 'CODEC_TIMEOUT',
      message: `the codec ran longer than ${limits.timeoutMs} ms and was stopped`,
    };
  }
  if (/memory limit/i.test(message)) {
    return {
      code: 'CODEC_MEMORY_LIMIT',
      message: `the codec used more than its ${limits.memoryLimitMiB} MiB of memory and was stopped`,
    };
  }
  if (isolateDisposed) {
    return { code: 'CODEC_SANDBOX_ERROR', message: `the codec's isolate is gone: ${message}` };
  }
  return { code: 'CODEC_THREW', message: describeError(error) };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The message, after the error's name unless it is plain `Error`. */
function describeError(error: unknown): string {
  const name = error instanceof Error && error.name !== 'Error' ? `${error.name}: ` : '';
  return `${name}${messageOf(error)}`;
}

/** Joins batch texts (JSON arrays of records) into one JSON array. */
function joinRecordTexts(parts: string[]): string {
  if (parts.length === 1) return parts[0]!;
  const inner = parts.map((part) => part.slice(1, -1)).filter((part) => part !== '');
  return `[${inner.join(',')}]`;
}

function invalidInput(message: string): CodecFailure {
  return { code: 'CODEC_INVALID_INPUT', message };
}

function checkBytesAndPort(bytes: unknown, fPort: unknown): CodecFailure | undefined {
  if (!(bytes instanceof Uint8Array)) return invalidInput('bytes must be a Uint8Array');
  if (typeof fPort !== 'number' || !Number.isInteger(fPort) || fPort < 0 || fPort > 255) {
    return invalidInput(`fPort ${String(fPort)} is not an integer 0-255`);
  }
  return undefined;
}

/**
 * The bytes as a latin1 string (one character per byte): only the view's own bytes cross into
 * the sandbox, never the rest of a pooled Buffer behind it.
 */
function latin1(bytes: Uint8Array): string {
  if (bytes.length <= 1024) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

function variablesText(
  variables: Readonly<Record<string, string>> | undefined,
): string | undefined {
  return variables === undefined ? undefined : JSON.stringify(variables);
}

function jsonText(data: JsonValue): string | CodecFailure {
  try {
    const text = JSON.stringify(data);
    if (typeof text === 'string') return text;
  } catch {
    // falls through
  }
  return invalidInput('data must be a JSON value');
}
