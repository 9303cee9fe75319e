import { decodeCayenneLpp, encodeCayenneLpp, type LppResult } from './cayenne-lpp.js';
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

/**
 * The built-in Cayenne LPP codec: the same outcomes as a sandboxed codec, without a sandbox
 * (it is Galet's own code). A malformed payload is reported as the codec's own error.
 */
export class CayenneLppCodec implements PayloadCodec {
  readonly kind = 'cayenne-lpp' as const;
  readonly signatures: CodecSignatures = {
    uplinkDecoder: 'decodeUplink',
    downlinkEncoder: 'encodeDownlink',
    downlinkDecoder: 'decodeDownlink',
    uplinkNormalizer: null,
  };

  decodeUplink(input: UplinkInput): DecodeOutcome {
    return decoded(decodeCayenneLpp(input.bytes));
  }

  decodeMany(inputs: readonly UplinkInput[]): DecodeOutcome[] {
    return inputs.map((input) => this.decodeUplink(input));
  }

  decodeManyAsync(inputs: readonly UplinkInput[]): Promise<DecodeOutcome[]> {
    return Promise.resolve(this.decodeMany(inputs));
  }

  decodeDownlink(input: DownlinkDecodeInput): DecodeOutcome {
    return decoded(decodeCayenneLpp(input.bytes));
  }

  encodeDownlink(input: DownlinkEncodeInput): EncodeOutcome {
    const result = encodeCayenneLpp(input.data);
    if (!result.ok) return { ok: false, error: reported(result.error), warnings: [] };
    if (input.fPort === undefined) {
      return {
        ok: false,
        error: { code: 'CODEC_INVALID_INPUT', message: 'Cayenne LPP downlinks need an fPort' },
        warnings: [],
      };
    }
    return { ok: true, bytes: result.value, fPort: input.fPort, warnings: [] };
  }

  normalizeUplink(_input: NormalizeInput): DecodeOutcome {
    return {
      ok: false,
      error: {
        code: 'CODEC_FUNCTION_MISSING',
        message: 'the Cayenne LPP codec has no normalizeUplink',
      },
      warnings: [],
    };
  }
}

function decoded(result: LppResult<{ [name: string]: JsonValue }>): DecodeOutcome {
  return result.ok
    ? { ok: true, data: result.value, warnings: [] }
    : { ok: false, error: reported(result.error), warnings: [] };
}

function reported(message: string): CodecFailure {
  return { code: 'CODEC_REPORTED_ERRORS', message, errors: [message] };
}
