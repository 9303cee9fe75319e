#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAirtimeCommand } from './airtime-command.js';
import { registerApiKeyCommands } from './api-key-command.js';
import { registerAuditCommand } from './audit-command.js';
import { registerCodecCommands } from './codec-command.js';
import { registerCodecsImportCommand } from './codecs-import-command.js';
import { userErrorMessage } from './fail.js';
import { registerFrameCommands } from './frame-command.js';
import { registerKeysCommands } from './keys-command.js';
import { registerLoginCommands } from './login-command.js';
import { registerResourceCommands } from './resource-commands.js';
import { registerSimulateCommand } from './simulate-command.js';
import { registerTenantCommands } from './tenant-command.js';
import { registerUserCommands } from './user-command.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/**
 * The program for `argv`. `galet start` loads the whole server (seconds of module loading), so
 * it is registered only when it may be the command asked for: every other command (the API
 * clients above all, run many times from scripts) starts without it.
 */
export async function buildProgram(argv: readonly string[] = []): Promise<Command> {
  const asked = argv[2];
  const withoutServer = registerCommands(newProgram(), undefined);
  if (asked !== undefined && withoutServer.commands.some((c) => c.name() === asked)) {
    return withoutServer;
  }
  const { registerStartCommand } = await import('./start-command.js');
  return registerCommands(newProgram(), registerStartCommand);
}

function newProgram(): Command {
  return new Command('galet')
    .description('Galet: LoRaWAN network server and data platform for public IoT networks')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
}

function registerCommands(
  program: Command,
  registerStartCommand: ((program: Command) => void) | undefined,
): Command {
  registerStartCommand?.(program);
  // The platform API: login, tenants, users, keys, audit, then the resources.
  registerLoginCommands(program);
  registerTenantCommands(program);
  registerUserCommands(program);
  registerApiKeyCommands(program);
  registerAuditCommand(program);
  registerResourceCommands(program);
  registerSimulateCommand(program);
  registerFrameCommands(program);
  registerKeysCommands(program);
  registerAirtimeCommand(program);
  registerCodecCommands(program);
  registerCodecsImportCommand(program);
  program.action(() => {
    process.stdout.write(`galet ${packageVersion()}\n\n`);
    program.outputHelp();
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message (or the help/version it was asked for).
      return error.exitCode;
    }
    const message = userErrorMessage(error);
    if (message !== undefined) {
      process.stderr.write(`galet: ${message}\n`);
      return 1;
    }
    throw error;
  }
}

process.exitCode = await main(process.argv);
