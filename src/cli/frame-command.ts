import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { hexToBytes } from '../lorawan/bytes.js';
import type { AesKey } from '../lorawan/crypto/aes.js';
import { describeFrame } from '../lorawan/describe-frame.js';
import { isLorawanError } from '../lorawan/errors.js';
import { CliInputError } from './fail.js';
import { readFrameInputs } from './frame-inputs.js';

export function registerFrameCommands(program: Command): void {
  const frame = program.command('frame').description('inspect LoRaWAN frames');
  frame
    .command('decode')
    .description(
      'decode a PHYPayload (hex) into JSON; with keys, check the MIC and decrypt.\n' +
        'With --batch, read NDJSON lines {"phy": hex, <options in camelCase>} from stdin.',
    )
    .argument('[phy]', 'PHYPayload in hex')
    .option('--batch', 'read NDJSON from stdin, write one JSON line per input line')
    .option('--nwk-s-key <hex>', 'LoRaWAN 1.0 NwkSKey')
    .option('--app-s-key <hex>', 'AppSKey (FRMPayload on FPort > 0)')
    .option('--app-key <hex>', 'AppKey (1.0 JoinRequest MIC, JoinAccept)')
    .option('--nwk-key <hex>', 'NwkKey (1.1 JoinRequest MIC, JoinAccept, rejoin type 1)')
    .option('--f-nwk-s-int-key <hex>', 'LoRaWAN 1.1 FNwkSIntKey')
    .option('--s-nwk-s-int-key <hex>', 'LoRaWAN 1.1 SNwkSIntKey')
    .option('--nwk-s-enc-key <hex>', 'LoRaWAN 1.1 NwkSEncKey (FOpts, FPort 0)')
    .option('--tx-dr <n>', '1.1 uplink MIC: data rate of the uplink')
    .option('--tx-ch <n>', '1.1 uplink MIC: channel index of the uplink')
    .option('--conf-fcnt <n>', '1.1 MIC: counter of the acknowledged confirmed frame')
    .option('--fcnt32 <n>', 'full 32-bit frame counter when above 65535')
    .option('--join-eui <hex>', '1.1 JoinAccept MIC with OptNeg: JoinEUI of the request')
    .option('--dev-eui <hex>', '1.1 JoinAccept MIC with OptNeg: DevEUI of the request')
    .option('--dev-nonce <n>', '1.1 JoinAccept MIC with OptNeg: DevNonce of the request')
    .action(async (phy: string | undefined, options: Record<string, unknown>) => {
      if (options['batch'] === true) {
        if (phy !== undefined)
          throw new CliInputError('give either a PHYPayload or --batch, not both');
        await decodeBatch();
        return;
      }
      if (phy === undefined) throw new CliInputError('missing PHYPayload (hex), or use --batch');
      const { fcnt32, ...rest } = options;
      const inputs = readFrameInputs({ ...rest, fCnt32: fcnt32 }, 'flag');
      process.stdout.write(
        `${JSON.stringify(describeFrame(hexToBytes(phy, 'PHYPayload'), inputs))}\n`,
      );
    });
}

/**
 * NDJSON in, NDJSON out, in order. A line that cannot be decoded gives
 * {"error": {"code", "message"}} on its output line; the batch goes on.
 */
async function decodeBatch(): Promise<void> {
  const keyCache = new Map<string, AesKey>();
  const lines = createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let pending: string[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const chunk = pending.join('');
    pending = [];
    if (!process.stdout.write(chunk)) {
      await new Promise<void>((resolve) => process.stdout.once('drain', resolve));
    }
  };
  for await (const line of lines) {
    if (line.trim() === '') continue;
    pending.push(`${JSON.stringify(decodeBatchLine(line, keyCache))}\n`);
    if (pending.length >= 512) await flush();
  }
  await flush();
}

function decodeBatchLine(line: string, keyCache: Map<string, AesKey>): unknown {
  try {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new CliInputError('line is not valid JSON');
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new CliInputError('line must be a JSON object with a "phy" field');
    }
    const fields = record as Record<string, unknown>;
    if (typeof fields['phy'] !== 'string') throw new CliInputError('"phy" must be a hex string');
    return describeFrame(
      hexToBytes(fields['phy'], 'phy'),
      readFrameInputs(fields, 'json', keyCache),
    );
  } catch (error) {
    if (isLorawanError(error)) return { error: { code: error.code, message: error.message } };
    if (error instanceof CliInputError)
      return { error: { code: 'INVALID_INPUT', message: error.message } };
    throw error;
  }
}
