import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiClient, ApiError } from '../../src/cli/api-client.js';
import { CliInputError } from '../../src/cli/fail.js';
import { exchange, HttpTransportError } from '../../src/cli/http-request.js';
import { removeDir } from '../helpers/galet.js';
import { closeHttpServer } from '../helpers/sockets.js';
import { galetCli } from './run-cli.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A server on 127.0.0.1 that records every request it gets and answers with `handler`. */
async function recordingServer(
  handler: (seen: Seen, response: ServerResponse) => void,
  make: (listener: RequestListener) => Server = (listener) => createServer(listener),
): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = make((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const one = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(one);
      handler(one, response);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const scheme = server instanceof HttpsServer ? 'https' : 'http';
  return { server, url: `${scheme}://127.0.0.1:${port}`, seen };
}

function api(url: string, token = 'secret-token'): ApiClient {
  return new ApiClient({ url, token, source: 'option' });
}

describe('the CLI API client over node:http', () => {
  let server: Server;
  let base: string;
  let seen: Seen[];
  let other: { server: Server; url: string; seen: Seen[] };

  before(async () => {
    other = await recordingServer((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"elsewhere":true}');
    });
    ({
      server,
      url: base,
      seen,
    } = await recordingServer((request, response) => {
      const path = request.url.replace(/^\/api\/v1/, '');
      switch (path) {
        case '/applications':
          response.writeHead(request.method === 'POST' ? 201 : 200, {
            'content-type': 'application/json; charset=utf-8',
          });
          response.end(
            JSON.stringify({ echo: request.body === '' ? null : JSON.parse(request.body) }),
          );
          return;
        case '/refused':
          response.writeHead(400, { 'content-type': 'application/json' });
          response.end(
            JSON.stringify({
              error: 'VALIDATION_FAILED',
              message: 'body/name must be string',
              details: [
                { instancePath: '/name', message: 'must be string' },
                { instancePath: '/dev_eui', message: 'must match pattern' },
              ],
            }),
          );
          return;
        case '/gateway-error':
          response.writeHead(502, { 'content-type': 'text/html' });
          response.end('<html><body>502 Bad Gateway</body></html>');
          return;
        case '/export':
          response.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' });
          response.end('\ufeffdev_eui,name\n0011223344556677,été\n');
          return;
        case '/import':
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(
            JSON.stringify({ received: request.body, type: request.headers['content-type'] }),
          );
          return;
        case '/moved-permanently':
          response.writeHead(308, { location: '/api/v1/applications' });
          response.end();
          return;
        case '/see-other':
          response.writeHead(303, { location: `${base}/api/v1/applications` });
          response.end();
          return;
        case '/elsewhere':
          response.writeHead(302, { location: `${other.url}/somewhere` });
          response.end();
          return;
        case '/loop':
          response.writeHead(302, { location: '/api/v1/loop' });
          response.end();
          return;
        case '/cut-short':
          response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
          response.write('{"partial":');
          setTimeout(() => response.socket?.destroy(), 20);
          return;
        case '/silent':
          return; // never answers
        default:
          response.writeHead(404, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ error: 'NOT_FOUND', message: `no route ${path}` }));
      }
    }));
  });
  after(async () => {
    await closeHttpServer(server);
    await closeHttpServer(other.server);
  });

  it('sends the bearer token, Accept and a JSON body, and parses the JSON answer', async () => {
    const answer = await api(base).request('POST', '/applications', { name: 'fleet', n: 3 });
    assert.deepEqual(answer, { echo: { name: 'fleet', n: 3 } });
    const request = seen.at(-1);
    assert.equal(request?.method, 'POST');
    assert.equal(request?.url, '/api/v1/applications');
    assert.equal(request?.headers['authorization'], 'Bearer secret-token');
    assert.equal(request?.headers['content-type'], 'application/json');
    assert.equal(request?.headers['accept'], '*/*');
    assert.equal(
      request?.headers['content-length'],
      String(Buffer.byteLength(request?.body ?? '')),
    );
  });

  it('sends no Authorization header for an unauthenticated request, and another token when told', async () => {
    await api(base).send('GET', '/applications', { authenticated: false });
    assert.equal(seen.at(-1)?.headers['authorization'], undefined);
    await api(base).send('GET', '/applications', { token: 'fresh-session' });
    assert.equal(seen.at(-1)?.headers['authorization'], 'Bearer fresh-session');
  });

  it('refuses an authenticated request without a credential, before any connection', async () => {
    const before = seen.length;
    await assert.rejects(
      new ApiClient({ url: base, token: undefined, source: 'none' }).request(
        'GET',
        '/applications',
      ),
      (error: unknown) => {
        assert.ok(error instanceof CliInputError);
        assert.match(
          error.message,
          /^no credential for http:\/\/127\.0\.0\.1:\d+: run galet login/,
        );
        return true;
      },
    );
    assert.equal(seen.length, before);
  });

  it('turns an API error body into an ApiError with its code and each failing field', async () => {
    await assert.rejects(api(base).request('POST', '/refused', { name: 1 }), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 400);
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(
        error.message,
        'body/name must be string (HTTP 400)\n  body.name must be string\n  body.dev_eui must match pattern',
      );
      return true;
    });
  });

  it('turns a non-JSON error body into an ApiError carrying its text', async () => {
    await assert.rejects(api(base).request('GET', '/gateway-error'), (error: unknown) => {
      assert.ok(error instanceof ApiError);
      assert.equal(error.status, 502);
      assert.equal(error.code, 'HTTP_502');
      assert.equal(error.message, '<html><body>502 Bad Gateway</body></html> (HTTP 502)');
      return true;
    });
    const raw = await api(base).requestRaw('GET', '/nowhere');
    assert.deepEqual(raw, {
      status: 404,
      contentType: 'application/json',
      text: '{"error":"NOT_FOUND","message":"no route /nowhere"}',
      body: { error: 'NOT_FOUND', message: 'no route /nowhere' },
    });
  });

  it('uploads a text body with its content type and downloads CSV as UTF-8 text', async () => {
    const csv = 'dev_eui,name\n0011223344556677,capteur été\n';
    const uploaded = await api(base).send('POST', '/import', {
      text: { content: csv, contentType: 'text/csv' },
    });
    assert.deepEqual(uploaded.body, { received: csv, type: 'text/csv' });
    const downloaded = await api(base).send('GET', '/export');
    assert.equal(downloaded.status, 200);
    assert.equal(downloaded.contentType, 'text/csv; charset=utf-8');
    // The byte order mark is dropped, as fetch's text() did.
    assert.equal(downloaded.text, 'dev_eui,name\n0011223344556677,été\n');
  });

  it('follows redirects as fetch did: 308 keeps the body, 303 turns into a GET', async () => {
    assert.deepEqual(await api(base).request('POST', '/moved-permanently', { kept: true }), {
      echo: { kept: true },
    });
    assert.equal(seen.at(-1)?.method, 'POST');
    assert.deepEqual(await api(base).request('POST', '/see-other', { dropped: true }), {
      echo: null,
    });
    assert.equal(seen.at(-1)?.method, 'GET');
    assert.equal(seen.at(-1)?.headers['content-type'], undefined);
    assert.equal(seen.at(-1)?.headers['authorization'], 'Bearer secret-token');
  });

  it('never sends the token to another origin a redirect points at', async () => {
    assert.deepEqual(await api(base).request('GET', '/elsewhere'), { elsewhere: true });
    assert.equal(other.seen.at(-1)?.url, '/somewhere');
    assert.equal(other.seen.at(-1)?.headers['authorization'], undefined);
  });

  it('gives up on a redirect loop with a clear message', async () => {
    await assert.rejects(api(base).request('GET', '/loop'), {
      name: 'CliInputError',
      message: `cannot reach Galet at ${base}: more than 20 redirects`,
    });
  });

  it('names the server and ECONNREFUSED when nothing listens', async () => {
    const closed = await recordingServer(() => undefined);
    await closeHttpServer(closed.server);
    await assert.rejects(api(closed.url).request('GET', '/applications'), {
      name: 'CliInputError',
      message: `cannot reach Galet at ${closed.url}: ECONNREFUSED`,
    });
  });

  it('reports an answer cut short instead of crashing', async () => {
    await assert.rejects(api(base).request('GET', '/cut-short'), (error: unknown) => {
      assert.ok(error instanceof CliInputError);
      assert.match(error.message, /^cannot reach Galet at .*: (ECONNRESET|answer cut short)$/);
      return true;
    });
  });

  it('fails with ETIMEDOUT when the server stays silent past the idle limit', async () => {
    const started = Date.now();
    await assert.rejects(
      exchange({ method: 'GET', url: `${base}/api/v1/silent`, headers: {}, idleTimeoutMs: 150 }),
      (error: unknown) => {
        assert.ok(error instanceof HttpTransportError);
        assert.equal(error.code, 'ETIMEDOUT');
        return true;
      },
    );
    assert.ok(Date.now() - started < 2000);
  });

  it('refuses a token that would break the header, with a message and no crash', async () => {
    await assert.rejects(
      api(base, 'bad\r\ntoken').request('GET', '/applications'),
      (error: unknown) => {
        assert.ok(error instanceof CliInputError);
        assert.match(
          error.message,
          /^cannot reach Galet at .*: Invalid character in header content/,
        );
        return true;
      },
    );
  });
});

describe('the CLI API client over https', () => {
  let dir: string;
  let https: { server: Server; url: string; seen: Seen[] } | undefined;
  let caFile: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'galet-api-client-'));
    caFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-days',
          '1',
          '-keyout',
          keyFile,
          '-out',
          caFile,
        ],
        { stdio: 'ignore' },
      );
    } catch {
      return; // no openssl: the tests below skip
    }
    const tls = { key: readFileSync(keyFile), cert: readFileSync(caFile) };
    https = await recordingServer(
      (_, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ applications: [], nextCursor: null }));
      },
      (listener) => createHttpsServer(tls, listener),
    );
  });
  after(async () => {
    if (https !== undefined) await closeHttpServer(https.server);
    await removeDir(dir);
  });

  it('refuses a self-signed certificate it was not told to trust', async (t) => {
    if (https === undefined) return t.skip('openssl is not installed');
    await assert.rejects(api(https.url).request('GET', '/applications'), {
      name: 'CliInputError',
      message: `cannot reach Galet at ${https.url}: DEPTH_ZERO_SELF_SIGNED_CERT`,
    });
  });

  it('trusts the CA given by NODE_EXTRA_CA_CERTS (the built CLI, as operators run it)', async (t) => {
    if (https === undefined) return t.skip('openssl is not installed');
    const run = await galetCli(
      ['application', 'list', '--json', '--url', https.url, '--token', 'tls-token'],
      { NODE_EXTRA_CA_CERTS: caFile },
    );
    assert.equal(run.stderr, '');
    assert.equal(run.status, 0);
    assert.deepEqual(JSON.parse(run.stdout), { applications: [], nextCursor: null });
    assert.equal(https.seen.at(-1)?.headers['authorization'], 'Bearer tls-token');
    assert.equal(https.seen.at(-1)?.url, '/api/v1/applications');
  });
});
