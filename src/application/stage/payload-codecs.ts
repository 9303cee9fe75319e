import type { CodecSettings } from '../../storage/index.js';
import {
  CayenneLppCodec,
  CodecError,
  CodecProcess,
  type CodecProcessOptions,
  type CodecSignatures,
  type DecodeOutcome,
  type DownlinkEncodeInput,
  type EncodeOutcome,
  type RemoteCodec,
  type UplinkInput,
} from '../codecs/index.js';

/** A codec ready to run: the built-in Cayenne LPP, or a JavaScript codec in the codec process. */
type LoadedCodec =
  | { kind: 'cayenne-lpp'; codec: CayenneLppCodec }
  | { kind: 'javascript'; codec: RemoteCodec };

/** The codec settings that decode something: not `none`. */
export type ActiveCodecSettings = CodecSettings & { type: 'cayenne-lpp' | 'javascript' };

export function isActiveCodec(codec: CodecSettings | undefined): codec is ActiveCodecSettings {
  return codec !== undefined && codec.type !== 'none';
}

/**
 * Runs device profiles' codecs for the application stage, the API's test bench and downlinks
 * given as objects: Cayenne LPP in process, JavaScript codecs in one `CodecProcess` (a child
 * process, started on the first JavaScript codec, so that a codec that makes V8 abort costs a
 * restart of that child, never of Galet). Every call returns an outcome; only `load` throws.
 */
export class PayloadCodecs {
  readonly #options: CodecProcessOptions;
  readonly #cayenneLpp = new CayenneLppCodec();
  #process: Promise<CodecProcess> | undefined;
  #running: CodecProcess | undefined;
  #closed = false;
  /** Settings objects come from the profile cache: the same object until the profile changes. */
  #loaded = new WeakMap<CodecSettings, Promise<LoadedCodec>>();

  constructor(options: CodecProcessOptions = {}) {
    this.#options = options;
  }

  /**
   * The codec of these settings, compiled (once per source). Throws a `CodecError` when a
   * JavaScript codec cannot serve any call (syntax error, throwing top-level code...).
   */
  async load(settings: ActiveCodecSettings): Promise<{ signatures: CodecSignatures }> {
    const loaded = await this.#load(settings);
    return { signatures: loaded.codec.signatures };
  }

  /** Decodes uplinks with one codec, in batches; outcomes in input order. */
  async decodeMany(
    settings: ActiveCodecSettings,
    inputs: readonly UplinkInput[],
  ): Promise<DecodeOutcome[]> {
    if (inputs.length === 0) return [];
    let loaded: LoadedCodec;
    try {
      loaded = await this.#load(settings);
    } catch (error) {
      const outcome = loadFailure(error);
      return inputs.map(() => outcome);
    }
    if (loaded.kind === 'cayenne-lpp') return loaded.codec.decodeMany(inputs);
    return loaded.codec.decodeMany(inputs);
  }

  async decodeUplink(settings: ActiveCodecSettings, input: UplinkInput): Promise<DecodeOutcome> {
    const [outcome] = await this.decodeMany(settings, [input]);
    return outcome as DecodeOutcome;
  }

  async encodeDownlink(
    settings: ActiveCodecSettings,
    input: DownlinkEncodeInput,
  ): Promise<EncodeOutcome> {
    let loaded: LoadedCodec;
    try {
      loaded = await this.#load(settings);
    } catch (error) {
      return loadFailure(error);
    }
    return loaded.codec.encodeDownlink(input);
  }

  /** The codec process's restarts (a codec made it abort, or the watchdog killed it). */
  stats(): { processRestarts: number; watchdogKills: number } {
    const stats = this.#running?.stats();
    return { processRestarts: stats?.restarts ?? 0, watchdogKills: stats?.watchdogKills ?? 0 };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const process = this.#process;
    this.#process = undefined;
    this.#running = undefined;
    if (process !== undefined) await (await process.catch(() => undefined))?.close();
  }

  #load(settings: ActiveCodecSettings): Promise<LoadedCodec> {
    if (settings.type === 'cayenne-lpp') {
      return Promise.resolve({ kind: 'cayenne-lpp', codec: this.#cayenneLpp });
    }
    let loaded = this.#loaded.get(settings);
    if (loaded === undefined) {
      const source = settings.source ?? '';
      loaded = this.#codecProcess()
        .then((process) => process.load(source))
        .then((codec): LoadedCodec => ({ kind: 'javascript', codec }));
      // A failed load is not kept: the next batch tries again (the failure may be transient).
      loaded.catch(() => this.#loaded.delete(settings));
      this.#loaded.set(settings, loaded);
    }
    return loaded;
  }

  #codecProcess(): Promise<CodecProcess> {
    if (this.#closed) {
      return Promise.reject(new CodecError('CODEC_SANDBOX_ERROR', 'the codec process is closed'));
    }
    if (this.#process === undefined) {
      const started = CodecProcess.start(this.#options);
      started.then(
        (process) => {
          this.#running = process;
        },
        () => {
          // A child that cannot start: the next call tries again.
          this.#process = undefined;
        },
      );
      this.#process = started;
    }
    return this.#process;
  }
}

function loadFailure(error: unknown): {
  ok: false;
  error: { code: CodecError['code']; message: string };
  warnings: string[];
} {
  if (error instanceof CodecError) {
    return { ok: false, error: { code: error.code, message: error.message }, warnings: [] };
  }
  return {
    ok: false,
    error: {
      code: 'CODEC_SANDBOX_ERROR',
      message: `the codec could not be loaded: ${String(error)}`,
    },
    warnings: [],
  };
}
