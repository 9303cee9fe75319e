/**
 * How Galet serves the web console's files (src/api/console-routes.ts): where, with which
 * headers, what it refuses. The browser test (console.test.ts) drives the pages themselves.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { CONSOLE_DIRECTORY, consoleRoutes } from '../../src/api/console-routes.js';
import { type PlatformApi, startPlatformApi } from '../api/platform-helpers.js';

const CSP_DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
];

function assertSecurityHeaders(headers: Record<string, unknown>, where: string): void {
  const csp = String(headers['content-security-policy']);
  for (const directive of CSP_DIRECTIVES)
    assert.ok(csp.includes(directive), `${where}: ${directive}`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/, `${where}: nothing unsafe in the CSP`);
  assert.equal(headers['x-frame-options'], 'DENY', where);
  assert.equal(headers['referrer-policy'], 'no-referrer', where);
  assert.equal(headers['x-content-type-options'], 'nosniff', where);
}

describe('web console files', () => {
  let api: PlatformApi;
  before(async () => {
    api = await startPlatformApi();
  });
  after(async () => {
    await api.close();
  });
  const get = (url: string, headers: Record<string, string> = {}) =>
    api.app.inject({ method: 'GET', url, headers });

  it('redirects / and /console to /console/, with the security headers', async () => {
    for (const url of ['/', '/console']) {
      const answer = await get(url);
      assert.equal(answer.statusCode, 302, url);
      assert.equal(answer.headers.location, '/console/', url);
      assertSecurityHeaders(answer.headers, url);
    }
  });

  it('serves the page with a strict CSP, no inline script and only local resources', async () => {
    const answer = await get('/console/');
    assert.equal(answer.statusCode, 200);
    assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
    assertSecurityHeaders(answer.headers, '/console/');
    const html = answer.body;
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length > 0, 'a script');
    for (const [, attributes, content] of scripts) {
      assert.match(attributes!, /\bsrc="[a-z-]+\.js"/, 'a script is a file of the console');
      assert.equal(content!.trim(), '', 'no inline script');
    }
    assert.doesNotMatch(html, /\son[a-z]+=/i, 'no inline event handler');
    assert.doesNotMatch(html, /\b(src|href)="(https?:)?\/\//, 'no external resource');
    assert.doesNotMatch(html, /<style\b|\sstyle=/, 'no inline style (style-src self)');
  });

  it('serves each file with its type, cacheable with an ETag (304 when unchanged)', async () => {
    const expected: Record<string, RegExp> = {
      'app.js': /^text\/javascript/,
      'views.js': /^text\/javascript/,
      'api.js': /^text\/javascript/,
      'dom.js': /^text\/javascript/,
      'console.css': /^text\/css/,
      'favicon.svg': /^image\/svg\+xml/,
      'index.html': /^text\/html/,
    };
    for (const [name, type] of Object.entries(expected)) {
      const answer = await get(`/console/${name}`);
      assert.equal(answer.statusCode, 200, name);
      assert.match(String(answer.headers['content-type']), type, name);
      assert.equal(answer.body, await readFile(join(CONSOLE_DIRECTORY, name), 'utf8'), name);
      assertSecurityHeaders(answer.headers, name);
      assert.equal(answer.headers['cache-control'], 'no-cache', name);
      const etag = String(answer.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/, name);
      const again = await get(`/console/${name}`, { 'if-none-match': `W/"other", ${etag}` });
      assert.equal(again.statusCode, 304, `${name}: revalidated`);
      assert.equal(again.body, '');
    }
    const head = await api.app.inject({ method: 'HEAD', url: '/console/app.js' });
    assert.equal(head.statusCode, 200);
  });

  it('serves nothing else: unknown names, other directories and other methods are refused', async () => {
    for (const url of [
      '/console/missing.js',
      '/console/..%2Fpackage.json',
      '/console/%2e%2e%2fapi%2fserver.ts',
      '/console/../package.json',
      '/console/a/app.js',
      '/console/README.md',
    ]) {
      const answer = await get(url);
      assert.equal(answer.statusCode, 404, url);
      assert.doesNotMatch(answer.body, /"name": "galet"|import /, `${url}: no file content`);
    }
    const posted = await api.app.inject({ method: 'POST', url: '/console/', payload: {} });
    assert.equal(posted.statusCode, 404);
  });

  it('builds the page from text nodes only: no markup from data anywhere in the scripts', async () => {
    const scripts = (await readdir(CONSOLE_DIRECTORY)).filter((name) => name.endsWith('.js'));
    assert.ok(scripts.length >= 3);
    for (const name of scripts) {
      const source = await readFile(join(CONSOLE_DIRECTORY, name), 'utf8');
      for (const sink of [
        /\.innerHTML\b/,
        /\.outerHTML\b/,
        /insertAdjacentHTML/,
        /document\.write/,
        /\beval\(/,
        /new Function\(/,
      ]) {
        assert.doesNotMatch(source, sink, `${name}: ${sink}`);
      }
      // Only this origin's API: no absolute URL to fetch or stream from.
      assert.doesNotMatch(source, /(fetch|EventSource)\(\s*['"`]https?:/, name);
    }
  });

  it('starts without its files (a build that left them out), answering 404 and warning', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'galet-console-'));
    const warnings: string[] = [];
    const logger = {
      debug() {},
      info() {},
      warn(_object: object, message?: string) {
        warnings.push(message ?? '');
      },
      error() {},
      child() {
        return logger;
      },
    };
    const app = Fastify();
    try {
      await app.register(consoleRoutes, { logger, directory: join(empty, 'missing') });
      assert.equal((await app.inject({ method: 'GET', url: '/console/' })).statusCode, 404);
      assert.match(warnings.join('\n'), /console is not served: its files are missing/);
    } finally {
      await app.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});
