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
  let onClose: (() => void) | undefined;
  try {
    return await new Promise<string>((resolve, reject) => {
      // Ctrl-C, or Ctrl-D on an empty line, must end the command: a question left unanswered
      // would let Node exit with status 13 and not a word (an unsettled top-level await).
      const end = (error: CliInputError) => {
        process.stderr.write('\n');
        reject(error);
      };
      onClose = () => end(new CliInputError(`${what} is needed and the input ended`));
      lines.once('close', onClose);
      lines.once('SIGINT', () => end(new CliInputError('interrupted')));
      lines.question(question, (answer) => resolve(answer.trim()));
    });
  } finally {
    // Only this listener: readline detaches itself from the terminal on its own 'close'.
    if (onClose !== undefined) lines.off('close', onClose);
    lines.close();
  }
}

/** A secret from the terminal, not echoed. */
export async function askSecret(question: string, what: string): Promise<string> {
  if (!canPrompt()) throw new CliInputError(`${what} is needed and there is no terminal to ask it`);
  const input = process.stdin;
  // Raw mode (no echo) before the question: what is typed as soon as it shows is not echoed.
  input.setRawMode(true);
  process.stderr.write(question);
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
