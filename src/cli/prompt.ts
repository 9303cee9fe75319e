import { createInterface } from 'node:readline';
import { CliInputError } from './fail.js';

/**
 * Questions asked on the terminal (e-mail, password, TOTP code), and secrets read from standard
 * input (`--password-stdin`) so that they never appear in a command line or a shell history.
 */

/** Whether there is someone at a terminal to ask. */
export function canPrompt(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

/** One answer from the terminal; the question goes to standard error. */
export async function ask(question: string, what: string): Promise<string> {
  if (!canPrompt()) throw new CliInputError(`${what} is needed and there is no terminal to ask it`);
  const lines = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  try {
    return (await new Promise<string>((resolve) => lines.question(question, resolve))).trim();
  } finally {
    lines.close();
  }
}

/** A secret from the terminal, not echoed. */
export async function askSecret(question: string, what: string): Promise<string> {
  if (!canPrompt()) throw new CliInputError(`${what} is needed and there is no terminal to ask it`);
  const input = process.stdin;
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  input.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let secret = '';
      const onData = (chunk: string) => {
        for (const character of chunk) {
          if (character === '\r' || character === '\n' || character === '\u0004') {
            input.off('data', onData);
            resolve(secret);
            return;
          }
          if (character === '\u0003') {
            input.off('data', onData);
            reject(new CliInputError('interrupted'));
            return;
          }
          secret =
            character === '\u007f' || character === '\b' ? secret.slice(0, -1) : secret + character;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}

/** The first `count` lines of standard input (`--password-stdin`), without line endings. */
export async function readStdinLines(count: number, what: string): Promise<string[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const lines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/).slice(0, count);
  if ((lines[0] ?? '') === '') throw new CliInputError(`${what}: standard input is empty`);
  return lines;
}

/** The first line of standard input. */
export async function readStdinLine(what: string): Promise<string> {
  return (await readStdinLines(1, what))[0] as string;
}
