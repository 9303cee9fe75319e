/**
 * A program run in a real pseudo-terminal, through tmux: keys are typed into it and its screen is
 * read back as a person would see it (what the terminal echoed included). Each terminal has a
 * tmux server of its own (its own socket in a temporary directory), stopped by `close()`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const TMUX = 'tmux';
const SESSION = 'galet';
const POLL_MS = 20;
const EXIT_MARK = '[galet-terminal: exit status';
/** The line the shell prints when the program has ended, and what follows it. */
const EXIT_LINE = /\n?\[galet-terminal: exit status (\d+)\]\n[\s\S]*$/;

function tmux(args: string[], env?: NodeJS.ProcessEnv): Promise<{ stdout: string }> {
  return execFileAsync(TMUX, args, env === undefined ? {} : { env });
}

/** Why terminal tests cannot run here, or undefined when tmux is there. */
export async function tmuxMissing(): Promise<string | undefined> {
  try {
    await tmux(['-V']);
    return undefined;
  } catch {
    return 'tmux is not installed (not found on PATH): the terminal prompt tests need it';
  }
}

export interface Exit {
  /** The exit status (128 + the signal's number when a signal ended the program). */
  status: number;
  /** The whole screen, scrollback included, once the program has ended. */
  screen: string;
}

export class Terminal {
  readonly #dir: string;
  readonly #socket: string;

  private constructor(dir: string) {
    this.#dir = dir;
    this.#socket = join(dir, 'tmux.sock');
  }

  /**
   * Starts `command` (argv, no shell) in a new 120x50 terminal with `env` added; with
   * `stdoutTo`, its standard output goes to that file and the terminal keeps the rest.
   */
  static async open(
    command: string[],
    env: NodeJS.ProcessEnv,
    stdoutTo?: string,
  ): Promise<Terminal> {
    const dir = await mkdtemp(join(tmpdir(), 'galet-tty-'));
    const terminal = new Terminal(dir);
    // The pane stays after the program ends, so that its last screen is read.
    const config = join(dir, 'tmux.conf');
    await writeFile(config, 'set-option -g remain-on-exit on\nset-option -g status off\n');
    // The exit status is printed by a shell: tmux's own (#{pane_dead_status}) is sometimes
    // never set when the terminal closes before tmux learns that the process ended.
    const run = `"$@"${stdoutTo === undefined ? '' : ' > "$GALET_TERMINAL_STDOUT"'}`;
    const script = `${run}; printf '\\n${EXIT_MARK} %s]\\n' "$?"`;
    try {
      await tmux(
        ['-S', terminal.#socket, '-f', config, 'new-session', '-d', '-s', SESSION].concat([
          '-x',
          '120',
          '-y',
          '50',
          '--',
          'sh',
          '-c',
          script,
          'sh',
          ...command,
        ]),
        // The tmux server starts here and the program inherits its environment. Without TMUX:
        // tests run from inside a tmux session must not reach that session's server.
        { ...withoutTmux(process.env), ...env, GALET_TERMINAL_STDOUT: stdoutTo ?? '' },
      );
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    return terminal;
  }

  /** Everything on the screen and in its scrollback, wrapped lines joined. */
  async screen(): Promise<string> {
    const { stdout } = await this.#tmux('capture-pane', '-p', '-J', '-S', '-', '-t', SESSION);
    return stdout.replace(/\n+$/, '\n');
  }

  /** Waits until the screen matches `pattern`, and returns it. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = await this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) {
        throw new Error(`the terminal never showed ${pattern}; its screen:\n${screen}`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** Types `text` as it is (no key names). */
  async type(text: string): Promise<void> {
    await this.#tmux('send-keys', '-t', SESSION, '-l', text);
  }

  /** Presses keys by tmux's names: `Enter`, `BSpace`, `C-c`, `C-d`. */
  async press(...keys: string[]): Promise<void> {
    await this.#tmux('send-keys', '-t', SESSION, ...keys);
  }

  /** Waits until the program has ended; its exit status and its last screen. */
  async exit(timeoutMs = 15_000): Promise<Exit> {
    const screen = await this.waitFor(EXIT_LINE, timeoutMs);
    const status = Number(EXIT_LINE.exec(screen)?.[1]);
    return { status, screen: screen.replace(EXIT_LINE, '') };
  }

  /** Stops this terminal's tmux server (and the program, if it still runs). */
  async close(): Promise<void> {
    await this.#tmux('kill-server').catch(() => undefined);
    await rm(this.#dir, { recursive: true, force: true });
  }

  #tmux(...args: string[]): Promise<{ stdout: string }> {
    return tmux(['-S', this.#socket, ...args]);
  }
}

function withoutTmux(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { TMUX: _tmux, TMUX_PANE: _pane, ...rest } = env;
  return rest;
}
