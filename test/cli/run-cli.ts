import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cliEntry } from './built-cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `galet <args>` as a child process (the real CLI, compiled: see built-cli.ts) with `input`
 * on its standard input. No credential comes from the caller's environment unless `env` gives it.
 */
export function galetCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliEntry, ...args], {
      cwd: root,
      env: { ...process.env, GALET_TOKEN: '', GALET_ADMIN_TOKEN: '', GALET_URL: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}
