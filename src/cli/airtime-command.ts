import type { Command } from 'commander';
import { loraTimeOnAirMs } from '../lorawan/airtime.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

const CODING_RATES = ['4/5', '4/6', '4/7', '4/8'] as const;

export function registerAirtimeCommand(program: Command): void {
  program
    .command('airtime')
    .description('LoRa time on air of one frame, in milliseconds (Semtech AN1200.13)')
    .requiredOption('--sf <n>', 'spreading factor, 6-12')
    .requiredOption('--bw <khz>', 'bandwidth in kHz: 125, 250 or 500')
    .requiredOption('--payload <bytes>', 'PHYPayload size in bytes')
    .option('--cr <rate>', 'coding rate 4/5, 4/6, 4/7 or 4/8', '4/5')
    .option('--no-crc', 'no payload CRC (LoRaWAN downlinks)')
    .option('--preamble <symbols>', 'preamble length in symbols', '8')
    .option('--json', 'print {"airtimeMs": x} instead of the bare number')
    .action((options: Record<string, unknown>) => {
      const codingRate = options['cr'];
      if (!CODING_RATES.includes(codingRate as (typeof CODING_RATES)[number])) {
        throw new CliInputError(
          `--cr must be one of ${CODING_RATES.join(', ')}, got ${String(codingRate)}`,
        );
      }
      const ms = loraTimeOnAirMs({
        spreadingFactor: readInteger(options['sf'], 8, '--sf'),
        bandwidthKhz: readInteger(options['bw'], 16, '--bw'),
        payloadSize: readInteger(options['payload'], 8, '--payload'),
        codingRate: codingRate as (typeof CODING_RATES)[number],
        crc: options['crc'] !== false,
        preambleSymbols: readInteger(options['preamble'], 16, '--preamble'),
      });
      const rounded = Math.round(ms * 1e6) / 1e6;
      process.stdout.write(
        options['json'] === true ? `${JSON.stringify({ airtimeMs: rounded })}\n` : `${rounded}\n`,
      );
    });
}
