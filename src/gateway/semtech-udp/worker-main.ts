// The worker thread of SemtechUdpWorkerBackend: runs a SemtechUdpBackend (socket, parsing,
// PUSH_ACK/PULL_ACK, downlink paths, TX_ACK matching) and posts what it emits to the main thread,
// batched per turn of its event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { Deduplicator } from '../deduplicator.js';
import type { DeduplicatedUplink, FrameAnnotator } from '../types.js';
import { isSemtechUdpError } from './errors.js';
import type { GatewayLogger } from './server.js';
import { SemtechUdpBackend } from './server.js';
import type {
  FromWorker,
  GatewayEvent,
  LogLevel,
  ToWorker,
  UdpWorkerOptions,
} from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('worker-main.ts runs only as a worker thread');
const options = workerData as UdpWorkerOptions;

function post(message: FromWorker): void {
  port!.postMessage(message);
}

/** Errors do not survive structured cloning everywhere alike: send what a log line needs. */
function plainFields(fields: Record<string, unknown>): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    plain[key] =
      value instanceof Error
        ? {
            type: value.name,
            message: value.message,
            stack: value.stack,
            code: (value as NodeJS.ErrnoException).code,
          }
        : value;
  }
  return plain;
}

function logAt(level: LogLevel) {
  return (fields: Record<string, unknown>, message: string) =>
    post({ type: 'log', level, fields: plainFields(fields), message });
}

const logger: GatewayLogger = {
  debug: logAt('debug'),
  info: logAt('info'),
  warn: logAt('warn'),
  error: logAt('error'),
};

let nextRequestId = 1;
const verdicts = new Map<number, (allowed: boolean) => void>();
/** Gateways the main thread allowed: asked once (they stay allowed until the worker restarts). */
const allowed = new Set<string>();
/** Questions under way, so that a burst of one unknown gateway's datagrams asks once. */
const asking = new Map<string, Promise<boolean>>();

function isGatewayAllowed(gatewayId: string): boolean | Promise<boolean> {
  if (allowed.has(gatewayId)) return true;
  let question = asking.get(gatewayId);
  if (question === undefined) {
    const requestId = nextRequestId++;
    question = new Promise<boolean>((resolve) => verdicts.set(requestId, resolve)).then((yes) => {
      asking.delete(gatewayId);
      if (yes) allowed.add(gatewayId);
      return yes;
    });
    asking.set(gatewayId, question);
    post({ type: 'checkGateway', requestId, gatewayId });
  }
  return question;
}

let pending: GatewayEvent[] = [];
let flushScheduled = false;

function queue(event: GatewayEvent): void {
  pending.push(event);
  if (flushScheduled) return;
  flushScheduled = true;
  // After the I/O phase: every datagram read in this turn goes in one message.
  setImmediate(flush);
}

function flush(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const events = pending;
  pending = [];
  post({ type: 'events', events });
}

/** The frame annotator named in the options, or undefined (none, or it failed to load). */
async function loadAnnotator(): Promise<FrameAnnotator | undefined> {
  if (options.frameAnnotatorModule === undefined) return undefined;
  try {
    const loaded = (await import(options.frameAnnotatorModule)) as {
      createFrameAnnotator(): FrameAnnotator;
    };
    return loaded.createFrameAnnotator();
  } catch (error) {
    logger.error({ err: error }, 'frame annotator not loaded: frames go on without annotation');
    return undefined;
  }
}

let annotatorErrors = 0;

/** An annotator that throws leaves the frame as it is: it must never cost an uplink. */
function annotate(annotator: FrameAnnotator, uplink: DeduplicatedUplink): void {
  try {
    const annotation = annotator.annotate(uplink);
    if (annotation !== undefined) uplink.annotation = annotation;
  } catch (error) {
    annotatorErrors += 1;
    if (annotatorErrors === 1 || annotatorErrors % 10_000 === 0) {
      logger.error({ err: error, errors: annotatorErrors }, 'frame annotator failed on a frame');
    }
  }
}

async function main(): Promise<void> {
  let backend: SemtechUdpBackend;
  try {
    backend = await SemtechUdpBackend.listen({
      ...options.socket,
      logger,
      ...(options.checkGateways ? { isGatewayAllowed } : {}),
    });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException;
    post({
      type: 'listenFailed',
      message: failure.message,
      ...(failure.code === undefined ? {} : { code: failure.code }),
    });
    return;
  }
  const annotator = await loadAnnotator();
  const windowMs = options.deduplicationWindowMs;
  const deduplicator =
    windowMs === undefined
      ? undefined
      : new Deduplicator({
          windowMs,
          onUplink: (uplink) => {
            if (annotator !== undefined) annotate(annotator, uplink);
            queue({ kind: 'frame', uplink });
          },
        });
  backend.onUplink((uplink) =>
    deduplicator === undefined ? queue({ kind: 'uplink', uplink }) : deduplicator.add(uplink),
  );
  backend.onStats((stats) => queue({ kind: 'stats', stats }));
  backend.onTxAck((ack) => queue({ kind: 'txAck', ack }));
  port!.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'send':
        backend.sendDownlink(message.downlink).then(
          (ok) => post({ type: 'sent', requestId: message.requestId, ok }),
          (error: unknown) => {
            if (isSemtechUdpError(error)) {
              post({
                type: 'sendRefused',
                requestId: message.requestId,
                code: error.code,
                message: error.message,
              });
            } else {
              logger.error({ err: error }, 'downlink send failed');
              post({ type: 'sent', requestId: message.requestId, ok: false });
            }
          },
        );
        return;
      case 'gatewayVerdict': {
        const resolve = verdicts.get(message.requestId);
        verdicts.delete(message.requestId);
        resolve?.(message.allowed);
        return;
      }
      case 'flushDeduplication':
        deduplicator?.flush();
        flush();
        post({ type: 'deduplicationFlushed', requestId: message.requestId });
        return;
      case 'annotatorUpdate':
        try {
          annotator?.update(message.message);
        } catch (error) {
          logger.error({ err: error }, 'frame annotator refused an update');
        }
        return;
      case 'forgetGateway':
        allowed.delete(message.gatewayId);
        return;
      case 'reportCounters':
        post({ type: 'counters', counters: backend.counters() });
        return;
      case 'close':
        for (const resolve of verdicts.values()) resolve(false);
        verdicts.clear();
        void backend.close().then(() => {
          deduplicator?.close();
          flush();
          post({ type: 'closed', counters: backend.counters() });
          port!.close();
        });
        return;
    }
  });
  const { address, port: boundPort } = backend.address();
  post({ type: 'listening', address, port: boundPort });
}

void main();
