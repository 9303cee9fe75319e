#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerAirtimeCommand } from './airtime-command.js';
import { registerCodecCommands } from './codec-command.js';
import { userErrorMessage } from './fail.js';
import { registerFrameCommands } from './frame-command.js';
import { registerKeysCommands } from './keys-command.js';
import { registerResourceCommands } from './resource-commands.js';
import { registerSimulateCommand } from './simulate-command.js';
import { registerStartCommand } from './start-command.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

export function buildProgram(): Command {
  const program = new Command('galet')
    .description('Galet: LoRaWAN network server and data platform for public IoT networks')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerStartCommand(program);
  registerResourceCommands(program);
  registerSimulateCommand(program);
  registerFrameCommands(program);
  registerKeysCommands(program);
  registerAirtimeCommand(program);
  registerCodecCommands(program);
  program.action(() => {
    process.stdout.write(`galet ${packageVersion()}\n\n`);
    program.outputHelp();
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
