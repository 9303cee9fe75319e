// A real HTTP receiver on 127.0.0.1 for the webhook tests: records every request and answers
// what the test decides (a status, or no answer at all).
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeHttpServer } from '../../helpers/sockets.js';

export interface ReceivedRequest {
  eventId: number;
  devEui: string;
  attempt: number;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A status to answer, or 'hang' to keep the request open until the receiver closes. */
export type Answer = number | 'hang';

export class WebhookReceiver {
  readonly received: ReceivedRequest[] = [];
  answer: (request: ReceivedRequest) => Answer = () => 204;
  #server: Server | undefined;
  #port = 0;

  /** Listens on `port` (0: any free one). */
  async listen(port = this.#port): Promise<void> {
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const received: ReceivedRequest = {
          eventId: Number(request.headers['x-galet-event-id']),
          devEui: String(request.headers['x-galet-dev-eui']),
          attempt: Number(request.headers['x-galet-delivery-attempt']),
          url: request.url ?? '',
          headers: request.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.received.push(received);
        const answer = this.answer(received);
        if (answer === 'hang') return;
        response.statusCode = answer;
        response.end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hook`;
  }

  /** Stops listening and drops open connections (the receiver is "down"). */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await closeHttpServer(server);
  }

  /** Distinct event ids received with a 2xx-answer-worthy request, per device, in arrival order. */
  idsByDevice(): Map<string, number[]> {
    const byDevice = new Map<string, number[]>();
    for (const request of this.received) {
      byDevice.set(request.devEui, [...(byDevice.get(request.devEui) ?? []), request.eventId]);
    }
    return byDevice;
  }
}

export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
