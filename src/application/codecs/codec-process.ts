import { type ChildProcess, fork } from 'node:child_process';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CodecEngineOptions,
  codecId,
  DEFAULT_CODEC_LIMITS,
  DEFAULT_MAX_ISOLATES,
  DEFAULT_MAX_SOURCE_CHARS,
} from './codec-engine.js';
import type { ChildEngineOptions, FromChild, ToChild } from './codec-process-protocol.js';
import { CodecError } from './errors.js';
import { failed, outcomesFromRecordsText } from './records.js';
import { recvMs } from './sandboxed-codec.js';
import type {
  CodecFailure,
  CodecSignatures,
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  NormalizeInput,
  UplinkInput,
} from './types.js';

export interface CodecProcessOptions extends CodecEngineOptions {
  /**
   * A request that has been the child's current work for this long kills the child (which is
   * started again). The time cap of each codec call normally answers far sooner; this catches a
   * sandbox that hangs. Default 10 000 ms.
   */
  watchdogMs?: number;
  /** Most frames sent to the child in one request; `decodeMany` splits beyond. Default 1024. */
  maxFramesPerRequest?: number;
}

export interface CodecProcessStats {
  /** Times the child process died (or was killed by the watchdog) and was started again. */
  restarts: number;
  /** Of those, the watchdog's kills. */
  watchdogKills: number;
  /** Requests waiting for the child. */
  pending: number;
  codecs: number;
}

interface Pending {
  message: ToChild;
  settle: (reply: FromChild) => void;
}

type ChildState = 'starting' | 'ready' | 'gone';

/**
 * Runs codecs in a child process (a CodecEngine there), so that nothing a codec does can take
 * the server down: isolated-vm's memory limit is enforced by V8 on a best-effort basis, and some
 * allocations (a Map or an array grown past the limit in one step) abort the whole process
 * instead of failing the isolate. Here they abort the child, which is started again at once;
 * the request that was running gets a failed outcome (a batch is retried frame by frame, so
 * that only the guilty frame fails) and every other request is sent again.
 *
 * The child also gets `--no-node-snapshot`, which isolated-vm requires on Node 20 and later.
 */
export class CodecProcess {
  readonly #childOptions: ChildEngineOptions;
  readonly #watchdogMs: number;
  readonly #maxFramesPerRequest: number;
  readonly #now: () => number;
  readonly #pending = new Map<number, Pending>();
  readonly #queue: Pending[] = [];
  readonly #sources = new Map<string, string>();
  readonly #codecs = new Map<string, RemoteCodec>();
  /** Codecs the current child has loaded (or is loading from a request already sent). */
  #childHas = new Set<string>();
  #child: ChildProcess | undefined;
  #state: ChildState = 'gone';
  #stderrTail = '';
  #headSince = 0;
  #nextId = 1;
  #restarts = 0;
  #watchdogKills = 0;
  #killedByWatchdog = false;
  #closing: Promise<void> | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #consecutiveEarlyExits = 0;

  /** Starts the child process; resolves once it serves requests. */
  static async start(options: CodecProcessOptions = {}): Promise<CodecProcess> {
    const host = new CodecProcess(options);
    await host.#spawn();
    return host;
  }

  private constructor(options: CodecProcessOptions) {
    this.#childOptions = {
      timeoutMs: options.timeoutMs ?? DEFAULT_CODEC_LIMITS.timeoutMs,
      memoryLimitMiB: options.memoryLimitMiB ?? DEFAULT_CODEC_LIMITS.memoryLimitMiB,
      maxOutputChars: options.maxOutputChars ?? DEFAULT_CODEC_LIMITS.maxOutputChars,
      maxBatchSize: options.maxBatchSize ?? DEFAULT_CODEC_LIMITS.maxBatchSize,
      maxIsolates: options.maxIsolates ?? DEFAULT_MAX_ISOLATES,
      maxSourceChars: options.maxSourceChars ?? DEFAULT_MAX_SOURCE_CHARS,
    };
    this.#watchdogMs = options.watchdogMs ?? 10_000;
    this.#maxFramesPerRequest = options.maxFramesPerRequest ?? 1024;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Compiles a codec in the child (see CodecEngine.load); throws a CodecError when it cannot
   * serve any call. The same source loaded twice gives the same codec.
   */
  async load(source: string): Promise<RemoteCodec> {
    const id = codecId(source);
    const known = this.#codecs.get(id);
    if (known !== undefined) return known;
    this.#sources.set(id, source);
    const reply = await this.#request({ op: 'load', id: 0, codecId: id });
    if (reply.type === 'failed') {
      if (!this.#codecs.has(id)) this.#sources.delete(id);
      throw new CodecError(reply.code, reply.message);
    }
    if (reply.type !== 'loaded') throw new CodecError('CODEC_SANDBOX_ERROR', 'unexpected reply');
    const codec = this.#codecs.get(id) ?? new RemoteCodec(this, id, reply.signatures);
    this.#codecs.set(id, codec);
    return codec;
  }

  /** The child's process id (undefined while none runs). */
  get pid(): number | undefined {
    return this.#state === 'gone' ? undefined : this.#child?.pid;
  }

  stats(): CodecProcessStats {
    return {
      restarts: this.#restarts,
      watchdogKills: this.#watchdogKills,
      pending: this.#pending.size + this.#queue.length,
      codecs: this.#codecs.size,
    };
  }

  /** Stops the child; requests still waiting get a CODEC_SANDBOX_ERROR outcome. */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      clearInterval(this.#watchdog);
      clearTimeout(this.#restartTimer);
      const child = this.#child;
      if (child === undefined || this.#state === 'gone') {
        this.#failEverything();
        resolve();
        return;
      }
      child.once('exit', () => resolve());
      if (this.#state === 'starting') {
        // Not listening yet: it would miss the disconnect.
        child.kill('SIGKILL');
        return;
      }
      child.disconnect();
      setTimeout(() => child.kill('SIGKILL'), 2000).unref();
    });
    return this.#closing;
  }

  /** @internal RemoteCodec's way in. */
  call(message: ToChild): Promise<FromChild> {
    return this.#request(message);
  }

  /** @internal */
  get maxFramesPerRequest(): number {
    return this.#maxFramesPerRequest;
  }

  /**
   * @internal recvTime crosses as a number (the child has its own clock), and the bytes alone:
   * a view into a larger buffer (a pooled Node Buffer) would carry the whole buffer over.
   */
  withRecvTime(input: UplinkInput): UplinkInput {
    const recvTime = recvMs(input.recvTime, this.#now);
    const { bytes } = input;
    const alone =
      bytes instanceof Uint8Array &&
      (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength)
        ? new Uint8Array(bytes)
        : bytes;
    return { ...input, bytes: alone, recvTime };
  }

  #request(message: ToChild): Promise<FromChild> {
    if (this.#closing !== undefined) {
      return Promise.resolve(crashReply(message, closedFailure()));
    }
    return new Promise<FromChild>((settle) => {
      const pending: Pending = { message: { ...message, id: this.#nextId++ }, settle };
      if (this.#state === 'ready') this.#send(pending);
      else this.#queue.push(pending);
    });
  }

  #send(pending: Pending): void {
    const message = pending.message;
    const { codecId } = message;
    if (!this.#childHas.has(codecId)) {
      message.source = this.#sources.get(codecId);
      this.#childHas.add(codecId);
    } else {
      delete message.source;
    }
    if (this.#pending.size === 0) this.#headSince = performance.now();
    this.#pending.set(message.id, pending);
    this.#child!.send(message);
  }

  #spawn(): Promise<void> {
    const { entry, execArgv } = childEntry();
    const child = fork(entry, [], {
      execArgv,
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, GALET_CODEC_ENGINE: JSON.stringify(this.#childOptions) },
    });
    this.#child = child;
    this.#state = 'starting';
    this.#childHas = new Set();
    this.#stderrTail = '';
    this.#killedByWatchdog = false;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.#stderrTail = (this.#stderrTail + chunk).slice(-8192);
    });
    return new Promise<void>((resolve, reject) => {
      child.on('message', (reply: FromChild) => {
        if (reply.type === 'ready') {
          this.#state = 'ready';
          this.#consecutiveEarlyExits = 0;
          this.#startWatchdog();
          const queued = this.#queue.splice(0);
          for (const pending of queued) this.#send(pending);
          resolve();
          return;
        }
        this.#receive(reply);
      });
      child.on('error', () => {
        // 'exit' follows and does the work.
      });
      child.on('exit', (code, signal) => {
        if (this.#child !== child) return;
        const wasReady = this.#state === 'ready';
        this.#state = 'gone';
        if (this.#closing !== undefined) {
          this.#failEverything();
          return;
        }
        if (!wasReady) {
          this.#consecutiveEarlyExits++;
          if (this.#consecutiveEarlyExits >= 3) {
            const failure: CodecFailure = {
              code: 'CODEC_SANDBOX_ERROR',
              message: `the codec process cannot start (exit ${code ?? signal}): ${this.#stderrTail.trim().slice(-500)}`,
            };
            this.#failEverything(failure);
            reject(new CodecError(failure.code, failure.message));
            return;
          }
        }
        this.#restarts++;
        this.#recover(this.#crashFailure(code, signal));
        const delayMs = wasReady ? 0 : 200 * this.#consecutiveEarlyExits;
        this.#restartTimer = setTimeout(() => {
          if (this.#closing === undefined) this.#spawn().then(resolve, reject);
        }, delayMs);
      });
    });
  }

  #receive(reply: FromChild): void {
    if (reply.type === 'ready') return;
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    this.#headSince = performance.now();
    if (reply.type === 'failed' && pending.message.source !== undefined) {
      // The child could not load the codec: send the source again next time.
      this.#childHas.delete(pending.message.codecId);
    }
    pending.settle(reply);
  }

  /**
   * The child died: the request it was running (the oldest one sent) caused it. A batch is
   * split into single frames, so that only the guilty frame fails; everything else is sent
   * again to the next child.
   */
  #recover(failure: CodecFailure): void {
    const sent = [...this.#pending.values()];
    this.#pending.clear();
    const guilty = sent.shift();
    this.#queue.unshift(...sent);
    if (guilty === undefined) return;
    const message = guilty.message;
    if (message.op === 'decodeMany' && message.inputs.length > 1) {
      const singles = message.inputs.map((input) =>
        this.#request({ op: 'decodeUplink', id: 0, codecId: message.codecId, input }),
      );
      void Promise.all(singles).then((replies) => {
        guilty.settle({
          type: 'outcomes',
          id: message.id,
          outcomes: replies.map((reply) => outcomeOf(reply) as DecodeOutcome),
        });
      });
      return;
    }
    guilty.settle(crashReply(message, failure));
  }

  #crashFailure(code: number | null, signal: NodeJS.Signals | null): CodecFailure {
    if (this.#killedByWatchdog) {
      return {
        code: 'CODEC_TIMEOUT',
        message: `the codec process did not answer for ${this.#watchdogMs} ms and was restarted`,
      };
    }
    if (/heap_oom|out of memory|allocation failed/i.test(this.#stderrTail)) {
      return {
        code: 'CODEC_MEMORY_LIMIT',
        message: `the codec ran out of its ${this.#childOptions.memoryLimitMiB} MiB of memory; its process was restarted`,
      };
    }
    return {
      code: 'CODEC_SANDBOX_ERROR',
      message: `the codec process stopped (${signal ?? `exit ${code}`}) and was restarted`,
    };
  }

  #failEverything(failure: CodecFailure = closedFailure()): void {
    const all = [...this.#pending.values(), ...this.#queue.splice(0)];
    this.#pending.clear();
    for (const pending of all) pending.settle(crashReply(pending.message, failure));
  }

  #startWatchdog(): void {
    if (this.#watchdog !== undefined) return;
    this.#watchdog = setInterval(
      () => {
        if (this.#state !== 'ready' || this.#pending.size === 0) return;
        if (performance.now() - this.#headSince < this.#watchdogMs) return;
        this.#watchdogKills++;
        this.#killedByWatchdog = true;
        this.#child?.kill('SIGKILL');
      },
      Math.max(10, Math.floor(this.#watchdogMs / 4)),
    );
    this.#watchdog.unref();
  }
}

/** A codec loaded in a CodecProcess: the PayloadCodec calls, answered asynchronously. */
export class RemoteCodec {
  readonly #host: CodecProcess;
  #waiting: { input: UplinkInput; resolve: (outcome: DecodeOutcome) => void }[] = [];

  constructor(
    host: CodecProcess,
    readonly id: string,
    readonly signatures: CodecSignatures,
  ) {
    this.#host = host;
  }

  /**
   * One uplink. Uplinks asked for in the same turn of the event loop (the frames of one burst
   * of datagrams, say) travel to the child together, as one batch.
   */
  decodeUplink(input: UplinkInput): Promise<DecodeOutcome> {
    return new Promise<DecodeOutcome>((resolve) => {
      if (this.#waiting.length === 0) setImmediate(() => this.#flush());
      this.#waiting.push({ input: this.#host.withRecvTime(input), resolve });
    });
  }

  /** Frames in requests of at most `maxFramesPerRequest`; outcomes in input order. */
  async decodeMany(inputs: readonly UplinkInput[]): Promise<DecodeOutcome[]> {
    const size = this.#host.maxFramesPerRequest;
    const requests: Promise<DecodeOutcome[]>[] = [];
    for (let start = 0; start < inputs.length; start += size) {
      const chunk = inputs
        .slice(start, start + size)
        .map((input) => this.#host.withRecvTime(input));
      requests.push(
        this.#host
          .call({ op: 'decodeMany', id: 0, codecId: this.id, inputs: chunk })
          .then((reply) => {
            if (reply.type === 'records') return outcomesFromRecordsText(reply.text, chunk.length);
            if (reply.type === 'outcomes') return reply.outcomes;
            return chunk.map(() => failed(replyFailure(reply)));
          }),
      );
    }
    return (await Promise.all(requests)).flat();
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    void this.decodeMany(waiting.map((w) => w.input)).then((outcomes) => {
      waiting.forEach((w, i) => {
        w.resolve(outcomes[i]!);
      });
    });
  }

  async decodeDownlink(input: DownlinkDecodeInput): Promise<DecodeOutcome> {
    const reply = await this.#host.call({ op: 'decodeDownlink', id: 0, codecId: this.id, input });
    return outcomeOf(reply) as DecodeOutcome;
  }

  async encodeDownlink(input: DownlinkEncodeInput): Promise<EncodeOutcome> {
    const reply = await this.#host.call({ op: 'encodeDownlink', id: 0, codecId: this.id, input });
    return outcomeOf(reply) as EncodeOutcome;
  }

  async normalizeUplink(input: NormalizeInput): Promise<DecodeOutcome> {
    const reply = await this.#host.call({ op: 'normalizeUplink', id: 0, codecId: this.id, input });
    return outcomeOf(reply) as DecodeOutcome;
  }
}

/**
 * Where the child starts: the built `.js` directly, or from source (tests, tsx) the `.ts`
 * through tsx's loader.
 */
function childEntry(): { entry: string; execArgv: string[] } {
  const extension = extname(fileURLToPath(import.meta.url));
  const entry = fileURLToPath(new URL(`./codec-process-main${extension}`, import.meta.url));
  const execArgv = ['--no-node-snapshot'];
  if (extension !== '.js') execArgv.push('--import', import.meta.resolve('tsx'));
  return { entry, execArgv };
}

function closedFailure(): CodecFailure {
  return { code: 'CODEC_SANDBOX_ERROR', message: 'the codec process is closed' };
}

function replyFailure(reply: FromChild): CodecFailure {
  if (reply.type === 'failed') return { code: reply.code, message: reply.message };
  return { code: 'CODEC_SANDBOX_ERROR', message: `unexpected reply ${reply.type}` };
}

function outcomeOf(reply: FromChild): DecodeOutcome | EncodeOutcome {
  return reply.type === 'outcome' ? reply.outcome : failed(replyFailure(reply));
}

/** The reply a request gets when the child died running it. */
function crashReply(message: ToChild, failure: CodecFailure): FromChild {
  switch (message.op) {
    case 'load':
      return { type: 'failed', id: message.id, code: failure.code, message: failure.message };
    case 'decodeMany':
      return {
        type: 'outcomes',
        id: message.id,
        outcomes: message.inputs.map(() => failed(failure)),
      };
    default:
      return { type: 'outcome', id: message.id, outcome: failed(failure) };
  }
}
