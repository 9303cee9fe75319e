/**
 * Server-sent event streams on a real all-in-one Galet over HTTP: replay after Last-Event-ID
 * then live events, tenant isolation, the per-credential and total caps (429, metric, log
 * line), the metrics, the keep-alive heartbeat, the `galet start` settings, and a shutdown with
 * streams open.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_EVENT_STREAM_LIMITS } from '../../src/api/routes/event-streams.js';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { capturingLogger, type LogEntry, metricSample } from '../helpers/capture.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN, type TestGalet } from '../helpers/galet.js';

const APP_KEY = '2b7e151628aed2a6abf7158809cf4f3c';
const eui = () => randomBytes(8).toString('hex');

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** An open stream read with fetch: frames parsed as they come. */
interface OpenStream {
  status: number;
  /** The JSON body of a refused stream. */
  // biome-ignore lint/suspicious/noExplicitAny: the error body is read field by field
  refusal?: any;
  events: SseEvent[];
  comments: string[];
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  waitFor(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

async function openStream(
  baseUrl: string,
  token: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<OpenStream> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}${path}`, {
    headers: { authorization: `Bearer ${token}`, ...headers },
    signal: abort.signal,
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let ended: Promise<void> = Promise.resolve();
  if (response.status === 200 && response.body !== null) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    ended = (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let end = buffer.indexOf('\n\n');
          while (end !== -1) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event: SseEvent = {};
            for (const line of frame.split('\n')) {
              if (line.startsWith(':')) comments.push(line);
              else if (line.startsWith('id: ')) event.id = line.slice(4);
              else if (line.startsWith('event: ')) event.event = line.slice(7);
              else if (line.startsWith('data: ')) event.data = line.slice(6);
            }
            if (event.data !== undefined) events.push(event);
            end = buffer.indexOf('\n\n');
          }
        }
      } catch {
        // Aborted by the test.
      }
    })();
  }
  const refusal = response.status === 200 ? undefined : await response.json().catch(() => null);
  return {
    status: response.status,
    ...(refusal === undefined ? {} : { refusal }),
    events,
    comments,
    ended,
    async waitFor(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (events.length < count) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${count} events, got ${events.length}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return events;
    },
    close: () => abort.abort(),
  };
}

describe('server-sent event streams', () => {
  let galet: TestGalet;
  const A = { tenantId: '', applicationId: '', devEui: eui(), otherDevEui: eui(), token: '' };
  const B = { tenantId: '', applicationId: '', devEui: eui(), token: '' };

  async function admin(method: string, path: string, body?: unknown) {
    const answer = await galet.request(method, path, body);
    assert.ok(answer.status < 300, `${method} ${path}: ${JSON.stringify(answer.json)}`);
    return answer.json;
  }

  async function append(devEui: string, applicationId: string, fCnt: number): Promise<number> {
    return galet.storage.events.append({
      devEui,
      applicationId,
      type: 'up',
      time: new Date().toISOString(),
      body: { deviceInfo: { devEui, applicationId }, fCnt },
    });
  }

  before(async () => {
    galet = await startTestGalet({ apiRateLimitPerSecond: 0 });
    for (const [side, name] of [
      [A, 'Saint-Galmier'],
      [B, 'Montbrison'],
    ] as const) {
      side.tenantId = (await admin('POST', '/api/v1/tenants', { name })).id;
      side.applicationId = (
        await admin('POST', '/api/v1/applications', {
          name: `${name} meters`,
          tenantId: side.tenantId,
        })
      ).id;
      for (const devEui of 'otherDevEui' in side
        ? [side.devEui, side.otherDevEui]
        : [side.devEui]) {
        await admin('POST', '/api/v1/devices', {
          devEui,
          joinEui: eui(),
          name: `meter ${devEui}`,
          applicationId: side.applicationId,
          macVersion: '1.0.3',
          appKey: APP_KEY,
        });
      }
      side.token = (
        await admin('POST', '/api/v1/api-keys', {
          name: `${name} viewer`,
          tenantId: side.tenantId,
          role: 'viewer',
        })
      ).token;
    }
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  it('replays the events after Last-Event-ID, then sends live ones, only of its application', async () => {
    const first = await append(A.devEui, A.applicationId, 1);
    await append(A.devEui, A.applicationId, 2);
    await append(B.devEui, B.applicationId, 99);
    await append(A.otherDevEui, A.applicationId, 3);
    const stream = await openStream(
      galet.baseUrl,
      A.token,
      `/api/v1/applications/${A.applicationId}/events/stream`,
      { 'last-event-id': String(first) },
    );
    try {
      assert.equal(stream.status, 200);
      const replayed = await stream.waitFor(2);
      assert.deepEqual(
        replayed.map((e) => JSON.parse(e.data!).fCnt),
        [2, 3],
      );
      assert.equal(replayed[0]!.event, 'up');
      assert.equal(Number(replayed[0]!.id), first + 1);
      await append(B.devEui, B.applicationId, 100);
      const live = await append(A.devEui, A.applicationId, 4);
      const all = await stream.waitFor(3);
      assert.equal(Number(all[2]!.id), live);
      assert.equal(JSON.parse(all[2]!.data!).fCnt, 4);
      assert.equal(JSON.parse(all[2]!.data!).deviceInfo.applicationId, A.applicationId);
    } finally {
      stream.close();
    }
  });

  it("streams one device's events with ?lastEventId=, and starts live without one", async () => {
    const start = await append(A.devEui, A.applicationId, 10);
    await append(A.otherDevEui, A.applicationId, 11);
    await append(A.devEui, A.applicationId, 12);
    const resumed = await openStream(
      galet.baseUrl,
      A.token,
      `/api/v1/devices/${A.devEui}/events/stream?lastEventId=${start - 1}`,
    );
    let live: OpenStream | undefined;
    try {
      assert.deepEqual(
        (await resumed.waitFor(2)).map((e) => JSON.parse(e.data!).fCnt),
        [10, 12],
      );
      // Events are streamed once final (past the application stage): 10 and 12 are, now.
      live = await openStream(galet.baseUrl, A.token, `/api/v1/devices/${A.devEui}/events/stream`);
      await append(A.devEui, A.applicationId, 13);
      assert.deepEqual(
        (await live.waitFor(1)).map((e) => JSON.parse(e.data!).fCnt),
        [13],
      );
      assert.deepEqual(
        (await resumed.waitFor(3)).map((e) => JSON.parse(e.data!).fCnt),
        [10, 12, 13],
      );
    } finally {
      resumed.close();
      live?.close();
    }
  });

  it('replays at most 1000 events, then says where it skipped to and goes live', async () => {
    const devEui = A.otherDevEui;
    const before = await galet.storage.events.lastId();
    const ids = await galet.storage.events.appendMany(
      Array.from({ length: 1050 }, (_, i) => ({
        devEui,
        applicationId: A.applicationId,
        type: 'up',
        time: new Date().toISOString(),
        body: { deviceInfo: { devEui, applicationId: A.applicationId }, fCnt: 1000 + i },
      })),
    );
    const stream = await openStream(
      galet.baseUrl,
      A.token,
      `/api/v1/devices/${devEui}/events/stream`,
      { 'last-event-id': String(before) },
    );
    try {
      const events = await stream.waitFor(1001, 15_000);
      assert.deepEqual(
        events.slice(0, 1000).map((e) => Number(e.id)),
        ids.slice(0, 1000),
      );
      const notice = events[1000]!;
      assert.equal(notice.event, 'replay-truncated');
      const skipped = JSON.parse(notice.data!);
      assert.equal(skipped.skippedAfterId, ids[999]);
      assert.ok(skipped.resumedAtId >= ids[1049]!);
      assert.equal(Number(notice.id), skipped.resumedAtId);
      const live = await append(devEui, A.applicationId, 5000);
      const after = await stream.waitFor(1002);
      assert.equal(Number(after[1001]!.id), live);
    } finally {
      stream.close();
    }
  });

  it("answers 404 for another tenant's application or device, 400 for a bad Last-Event-ID", async () => {
    for (const path of [
      `/api/v1/applications/${A.applicationId}/events/stream`,
      `/api/v1/devices/${A.devEui}/events/stream`,
    ]) {
      const other = await openStream(galet.baseUrl, B.token, path);
      assert.equal(other.status, 404, path);
    }
    const bad = await openStream(
      galet.baseUrl,
      A.token,
      `/api/v1/devices/${A.devEui}/events/stream`,
      { 'last-event-id': '12; drop table events' },
    );
    assert.equal(bad.status, 400);
    const unauthenticated = await openStream(
      galet.baseUrl,
      'wrong-token',
      `/api/v1/devices/${A.devEui}/events/stream`,
    );
    assert.equal(unauthenticated.status, 401);
  });

  it('refuses more than 10 open streams per credential with 429', async () => {
    const streams: OpenStream[] = [];
    try {
      for (let i = 0; i < 10; i += 1) {
        const stream = await openStream(
          galet.baseUrl,
          B.token,
          `/api/v1/applications/${B.applicationId}/events/stream`,
        );
        assert.equal(stream.status, 200);
        streams.push(stream);
      }
      const refused = await openStream(
        galet.baseUrl,
        B.token,
        `/api/v1/applications/${B.applicationId}/events/stream`,
      );
      assert.equal(refused.status, 429);
      assert.equal(refused.refusal.error, 'TOO_MANY_STREAMS');
      assert.deepEqual(refused.refusal.details, {
        limit: 'per_credential',
        max: DEFAULT_EVENT_STREAM_LIMITS.maxStreamsPerPrincipal,
      });
      const otherCredential = await openStream(
        galet.baseUrl,
        A.token,
        `/api/v1/applications/${A.applicationId}/events/stream`,
      );
      assert.equal(otherCredential.status, 200);
      otherCredential.close();
      streams.pop()?.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const again = await openStream(
        galet.baseUrl,
        B.token,
        `/api/v1/applications/${B.applicationId}/events/stream`,
      );
      assert.equal(again.status, 200);
      streams.push(again);
    } finally {
      for (const stream of streams) stream.close();
    }
  });
});

describe('server-sent event streams: limits, metrics and heartbeat', () => {
  let galet: TestGalet;
  const logs: LogEntry[] = [];
  let applicationId = '';
  let keyToken = '';
  let keyId = '';
  const devEui = eui();

  before(async () => {
    galet = await startTestGalet({
      apiRateLimitPerSecond: 0,
      application: { eventStreams: { maxStreams: 3, maxStreamsPerPrincipal: 2, keepAliveMs: 100 } },
      logger: capturingLogger(logs),
    });
    const tenant = await galet.request('POST', '/api/v1/tenants', { name: 'Veauche' });
    const application = await galet.request('POST', '/api/v1/applications', {
      name: 'Veauche lights',
      tenantId: tenant.json.id,
    });
    applicationId = application.json.id;
    const key = await galet.request('POST', '/api/v1/api-keys', {
      name: 'Veauche script',
      tenantId: tenant.json.id,
      role: 'viewer',
    });
    assert.equal(key.status, 201, JSON.stringify(key.json));
    keyToken = key.json.token;
    keyId = key.json.id;
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  const path = () => `/api/v1/applications/${applicationId}/events/stream`;

  it('refuses streams beyond the per-credential and the total bound with 429, counted and logged', async () => {
    const streams: OpenStream[] = [];
    try {
      for (let i = 0; i < 2; i += 1) {
        const stream = await openStream(galet.baseUrl, keyToken, path());
        assert.equal(stream.status, 200);
        streams.push(stream);
      }
      const perCredential = await openStream(galet.baseUrl, keyToken, path());
      assert.equal(perCredential.status, 429);
      assert.equal(perCredential.refusal.error, 'TOO_MANY_STREAMS');
      assert.match(perCredential.refusal.message, /at most 2 event streams .* per credential/);
      assert.deepEqual(perCredential.refusal.details, { limit: 'per_credential', max: 2 });

      const third = await openStream(galet.baseUrl, TEST_ADMIN_TOKEN, path());
      assert.equal(third.status, 200, 'another credential, within the total');
      streams.push(third);
      const total = await openStream(galet.baseUrl, TEST_ADMIN_TOKEN, path());
      assert.equal(total.status, 429);
      assert.equal(total.refusal.error, 'TOO_MANY_STREAMS');
      assert.match(total.refusal.message, /3 event streams open, its limit/);
      assert.deepEqual(total.refusal.details, { limit: 'total', max: 3 });

      assert.equal(await metricSample(galet.baseUrl, 'galet_event_streams_open'), 3);
      assert.equal(
        await metricSample(
          galet.baseUrl,
          'galet_event_streams_refused_total{kind="per_credential"}',
        ),
        1,
      );
      assert.equal(
        await metricSample(galet.baseUrl, 'galet_event_streams_refused_total{kind="total"}'),
        1,
      );
      const refusals = logs.filter((entry) => entry.message.startsWith('event stream refused'));
      assert.deepEqual(
        refusals.map((entry) => [entry.level, entry.fields['limit'], entry.fields['credential']]),
        [
          ['warn', 'per_credential', `key:${keyId}`],
          ['warn', 'total', 'admin-token'],
        ],
      );
      assert.equal(JSON.stringify(logs).includes(keyToken), false, 'no token in the logs');

      // A place freed is a place taken again.
      streams.shift()?.close();
      await waitUntil(
        async () => (await metricSample(galet.baseUrl, 'galet_event_streams_open')) === 2,
      );
      const again = await openStream(galet.baseUrl, keyToken, path());
      assert.equal(again.status, 200);
      streams.push(again);
    } finally {
      for (const stream of streams) stream.close();
    }
    await waitUntil(
      async () => (await metricSample(galet.baseUrl, 'galet_event_streams_open')) === 0,
    );
    assert.equal(await metricSample(galet.baseUrl, 'galet_event_streams_opened_total'), 4);
  });

  it('counts the events it sends, and sends a keep-alive comment on an idle stream', async () => {
    const sentBefore = await metricSample(galet.baseUrl, 'galet_event_streams_events_sent_total');
    const stream = await openStream(galet.baseUrl, keyToken, path());
    try {
      assert.equal(stream.status, 200);
      for (const fCnt of [1, 2]) {
        await galet.storage.events.append({
          devEui,
          applicationId,
          type: 'up',
          time: new Date().toISOString(),
          body: { deviceInfo: { devEui, applicationId }, fCnt },
        });
      }
      await stream.waitFor(2);
      assert.equal(
        await metricSample(galet.baseUrl, 'galet_event_streams_events_sent_total'),
        sentBefore + 2,
      );
      // keepAliveMs is 100 here: a few heartbeats within half a second of silence.
      const heartbeats = stream.comments.filter((line) => line === ': keep-alive').length;
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(
        stream.comments.filter((line) => line === ': keep-alive').length >= heartbeats + 3,
        `${stream.comments.length} comments`,
      );
    } finally {
      stream.close();
    }
  });
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('galet start: event stream settings', () => {
  it('folds the --sse-* flags and GALET_SSE_* variables into application.eventStreams', () => {
    const options = resolveStartOptions(
      { sseMaxStreams: '50', sseKeepAliveMs: '30000' },
      { GALET_SSE_MAX_STREAMS_PER_CREDENTIAL: '4' },
    );
    assert.deepEqual(options.application?.eventStreams, {
      maxStreams: 50,
      maxStreamsPerPrincipal: 4,
      keepAliveMs: 30_000,
    });
    assert.equal('sseMaxStreams' in options, false);
    assert.equal(resolveStartOptions({}, {}).application, undefined);
  });

  it('refuses a bound of 0 or a value that is not a number', () => {
    assert.throws(() => resolveStartOptions({ sseMaxStreams: '0' }, {}), /at least 1/);
    assert.throws(
      () => resolveStartOptions({}, { GALET_SSE_MAX_STREAMS_PER_CREDENTIAL: 'ten' }),
      /GALET_SSE_MAX_STREAMS_PER_CREDENTIAL/,
    );
  });
});

describe('server-sent event streams at shutdown', () => {
  it('ends open streams when Galet stops, without waiting for them', async () => {
    const galet = await startTestGalet();
    try {
      const application = await galet.request('POST', '/api/v1/applications', { name: 'x' });
      const stream = await openStream(
        galet.baseUrl,
        galet.adminToken.token,
        `/api/v1/applications/${application.json.id}/events/stream`,
      );
      assert.equal(stream.status, 200);
      const started = Date.now();
      await galet.stop();
      await stream.ended;
      assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
    } finally {
      await removeDir(galet.dataDir);
    }
  });
});
