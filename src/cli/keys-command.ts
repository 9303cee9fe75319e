import type { Command } from 'commander';
import { bytesToHex, hexToBytes, hexToFixedBytes, parseHexUint } from '../lorawan/bytes.js';
import { unwrapKey, wrapKey } from '../lorawan/crypto/key-wrap.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../lorawan/crypto/session-keys.js';
import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

function key(hex: unknown, flag: string): Uint8Array {
  if (typeof hex !== 'string') throw new CliInputError(`missing ${flag}`);
  return hexToFixedBytes(hex, 16, flag);
}

function eui(hex: unknown, flag: string): string {
  if (typeof hex !== 'string') throw new CliInputError(`missing ${flag}`);
  hexToFixedBytes(hex, 8, flag);
  return hex.toLowerCase();
}

function integer(value: unknown, bits: number, flag: string): number {
  if (value === undefined) throw new CliInputError(`missing ${flag}`);
  return readInteger(value, bits, flag);
}

function printKeys(keys: Record<string, Uint8Array>): void {
  const hex = Object.fromEntries(
    Object.entries(keys).map(([name, value]) => [name, bytesToHex(value)]),
  );
  process.stdout.write(`${JSON.stringify(hex)}\n`);
}

export function registerKeysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('derive, wrap and unwrap LoRaWAN keys; rotate the master key');

  keys
    .command('derive')
    .description('derive session keys from root keys and join parameters')
    .requiredOption('--lorawan <version>', '1.0 or 1.1')
    .option('--app-key <hex>', 'AppKey')
    .option('--nwk-key <hex>', 'NwkKey (1.1)')
    .option('--join-nonce <n>', 'JoinNonce (decimal)')
    .option('--net-id <hex>', 'NetID, 6 hex digits (1.0)')
    .option('--join-eui <hex>', 'JoinEUI (1.1)')
    .option('--dev-nonce <n>', 'DevNonce (decimal)')
    .action((options: Record<string, unknown>) => {
      const joinNonce = integer(options['joinNonce'], 24, '--join-nonce');
      const devNonce = integer(options['devNonce'], 16, '--dev-nonce');
      if (options['lorawan'] === '1.0') {
        if (typeof options['netId'] !== 'string') throw new CliInputError('missing --net-id');
        const netId = parseHexUint(options['netId'], 3, '--net-id');
        printKeys({
          ...deriveSessionKeys10(key(options['appKey'], '--app-key'), joinNonce, netId, devNonce),
        });
      } else if (options['lorawan'] === '1.1') {
        const derived = deriveSessionKeys11(
          key(options['nwkKey'], '--nwk-key'),
          key(options['appKey'], '--app-key'),
          joinNonce,
          eui(options['joinEui'], '--join-eui'),
          devNonce,
        );
        printKeys({ ...derived });
      } else {
        throw new CliInputError(`--lorawan must be 1.0 or 1.1, got ${String(options['lorawan'])}`);
      }
    });

  keys
    .command('js')
    .description('derive the 1.1 join server keys JSIntKey and JSEncKey')
    .requiredOption('--nwk-key <hex>', 'NwkKey')
    .requiredOption('--dev-eui <hex>', 'DevEUI')
    .action((options: Record<string, unknown>) => {
      printKeys({
        ...deriveJoinServerKeys(
          key(options['nwkKey'], '--nwk-key'),
          eui(options['devEui'], '--dev-eui'),
        ),
      });
    });

  keys
    .command('wrap')
    .description('wrap a key with a KEK (RFC 3394)')
    .requiredOption('--kek <hex>', 'key-encryption key (16, 24 or 32 bytes)')
    .requiredOption('--key <hex>', 'key to wrap')
    .action((options: Record<string, string>) => {
      const wrapped = wrapKey(
        hexToBytes(options['kek']!, '--kek'),
        hexToBytes(options['key']!, '--key'),
      );
      process.stdout.write(`${JSON.stringify({ wrapped: bytesToHex(wrapped) })}\n`);
    });

  keys
    .command('rotate-master')
    .description(
      'move every secret stored under the master key to a new master key, in one transaction (stop Galet first)',
    )
    .option('--data-dir <path>', 'data directory (default ./data), as for galet start')
    .option('--database-url <url>', 'postgres://… (default: SQLite file in the data directory)')
    .option('--config <file>', 'JSON config file of galet start (dataDir, databaseUrl)')
    .option('--dry-run', 'check that every stored secret opens and count them; change no key')
    .action(async (flags: Record<string, unknown>) => {
      // Loaded here: the storage engines are not needed by the other keys commands.
      const { resolveStartOptions } = await import('./start-command.js');
      const { rotateMasterKey } = await import('./master-key-command.js');
      const settings = resolveStartOptions(
        { dataDir: flags['dataDir'], databaseUrl: flags['databaseUrl'], config: flags['config'] },
        process.env,
      );
      await rotateMasterKey({
        dataDir: settings.dataDir,
        databaseUrl: settings.databaseUrl,
        env: process.env,
        dryRun: flags['dryRun'] === true,
        out: (line) => process.stdout.write(`${line}\n`),
      });
    });

  keys
    .command('unwrap')
    .description('unwrap a key (RFC 3394); fails when the KEK is wrong or the envelope altered')
    .requiredOption('--kek <hex>', 'key-encryption key')
    .requiredOption('--wrapped <hex>', 'wrapped key')
    .action((options: Record<string, string>) => {
      const unwrapped = unwrapKey(
        hexToBytes(options['kek']!, '--kek'),
        hexToBytes(options['wrapped']!, '--wrapped'),
      );
      process.stdout.write(`${JSON.stringify({ key: bytesToHex(unwrapped) })}\n`);
    });
}
