import { createHash } from 'node:crypto';
import { CayenneLppCodec } from './cayenne-lpp-codec.js';
import { CodecError } from './errors.js';
import {
  type CodecCounters,
  type CodecLimits,
  SandboxedCodec,
  type SandboxHost,
} from './sandboxed-codec.js';

export interface CodecEngineOptions extends Partial<CodecLimits> {
  /** Most isolates alive at once; the least recently used codec's isolate is freed beyond it. */
  maxIsolates?: number;
  /** Largest codec source accepted, in characters. */
  maxSourceChars?: number;
  /** Clock for `recvTime` when an input has none (milliseconds since the epoch). */
  now?: () => number;
}

export const DEFAULT_CODEC_LIMITS: Readonly<CodecLimits> = {
  timeoutMs: 100,
  memoryLimitMiB: 32,
  maxOutputChars: 64 * 1024,
  maxBatchSize: 256,
};
export const DEFAULT_MAX_ISOLATES = 32;
export const DEFAULT_MAX_SOURCE_CHARS = 1024 * 1024;

export interface CodecEngineStats extends CodecCounters {
  /** Codecs loaded (sandboxed JavaScript; the built-ins need no isolate). */
  codecs: number;
  liveIsolates: number;
}

/**
 * Runs the payload codecs of every device profile. Each JavaScript codec is compiled once into
 * its own isolate and kept warm; at most `maxIsolates` isolates live at once (least recently
 * used first out, recreated from the source on their next call). The same source loaded twice
 * gives the same codec.
 */
export class CodecEngine {
  readonly limits: Readonly<CodecLimits>;
  readonly maxIsolates: number;
  readonly maxSourceChars: number;
  readonly #counters: CodecCounters = {
    isolatesCreated: 0,
    isolatesEvicted: 0,
    timeouts: 0,
    memoryLimitHits: 0,
    sandboxErrors: 0,
    batchFallbacks: 0,
  };
  readonly #bySource = new Map<string, SandboxedCodec>();
  /** Codecs with a live isolate, least recently used first (a Map keeps insertion order). */
  readonly #live = new Map<SandboxedCodec, true>();
  #mostRecent: SandboxedCodec | undefined;
  readonly #host: SandboxHost;
  readonly #cayenneLpp = new CayenneLppCodec();

  constructor(options: CodecEngineOptions = {}) {
    this.limits = Object.freeze({
      timeoutMs: positiveInteger(options.timeoutMs, DEFAULT_CODEC_LIMITS.timeoutMs, 'timeoutMs'),
      memoryLimitMiB: positiveInteger(
        options.memoryLimitMiB,
        DEFAULT_CODEC_LIMITS.memoryLimitMiB,
        'memoryLimitMiB',
      ),
      maxOutputChars: positiveInteger(
        options.maxOutputChars,
        DEFAULT_CODEC_LIMITS.maxOutputChars,
        'maxOutputChars',
      ),
      maxBatchSize: positiveInteger(
        options.maxBatchSize,
        DEFAULT_CODEC_LIMITS.maxBatchSize,
        'maxBatchSize',
      ),
    });
    if (this.limits.memoryLimitMiB < 8) {
      throw new RangeError('memoryLimitMiB must be at least 8 (the smallest heap V8 accepts)');
    }
    this.maxIsolates = positiveInteger(options.maxIsolates, DEFAULT_MAX_ISOLATES, 'maxIsolates');
    this.maxSourceChars = positiveInteger(
      options.maxSourceChars,
      DEFAULT_MAX_SOURCE_CHARS,
      'maxSourceChars',
    );
    const now = options.now ?? Date.now;
    this.#host = {
      limits: this.limits,
      counters: this.#counters,
      now,
      touched: (codec) => this.#touched(codec),
      released: (codec) => this.#released(codec),
    };
  }

  /**
   * Compiles a JavaScript codec (TS013 / TTN, ChirpStack v3 or v4, TTN v2 legacy) and runs its
   * top-level code once. Throws a CodecError when the source cannot serve any call: it does not
   * compile, its top-level code throws or runs out of time or memory, or it defines no codec
   * function.
   */
  load(source: string): SandboxedCodec {
    const known = this.#bySource.get(source);
    if (known !== undefined) return known;
    if (source.length > this.maxSourceChars) {
      throw new CodecError(
        'CODEC_COMPILE_ERROR',
        `the codec source has ${source.length} characters, more than the limit of ${this.maxSourceChars}`,
      );
    }
    const codec = new SandboxedCodec(codecId(source), source, this.#host);
    this.#bySource.set(source, codec);
    return codec;
  }

  /** The built-in Cayenne LPP codec (plain TypeScript, no sandbox). */
  cayenneLpp(): CayenneLppCodec {
    return this.#cayenneLpp;
  }

  /** Forgets a codec and frees its isolate. */
  unload(codec: SandboxedCodec): void {
    codec.evict();
    for (const [source, known] of this.#bySource) {
      if (known === codec) {
        this.#bySource.delete(source);
        break;
      }
    }
  }

  stats(): CodecEngineStats {
    return { ...this.#counters, codecs: this.#bySource.size, liveIsolates: this.#live.size };
  }

  /** Frees every isolate. The engine stays usable: codecs recreate theirs on their next call. */
  dispose(): void {
    for (const codec of [...this.#live.keys()]) codec.evict();
    this.#bySource.clear();
  }

  #touched(codec: SandboxedCodec): void {
    if (this.#mostRecent === codec) return;
    this.#live.delete(codec);
    this.#live.set(codec, true);
    this.#mostRecent = codec;
    if (this.#live.size <= this.maxIsolates) return;
    for (const candidate of this.#live.keys()) {
      if (this.#live.size <= this.maxIsolates) break;
      if (candidate === codec || candidate.isBusy) continue;
      this.#counters.isolatesEvicted++;
      candidate.evict();
    }
  }

  #released(codec: SandboxedCodec): void {
    this.#live.delete(codec);
    if (this.#mostRecent === codec) this.#mostRecent = undefined;
  }
}

/** A codec's id: a short hash of its source (the same in the server and its codec process). */
export function codecId(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}
