import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../logger.js';

/**
 * The web console (docs/console.md): the static files of `src/console/` at `/console/`, and `/`
 * redirected there. The pages talk to `/api/v1` with the session cookie; nothing here reads a
 * credential. Every answer carries a strict Content-Security-Policy (scripts, styles and
 * connections from this origin only, no inline script, no framing) and the headers that go
 * with it.
 *
 * The files are read once, at start, from `../console/` beside this module: `src/console/`
 * under tsx, `dist/console/` once `npm run build` copied them there.
 */

export interface ConsoleRouteOptions {
  logger?: Logger | undefined;
  /** Where the files are; default `../console/` beside this module. */
  directory?: string;
}

export const CONSOLE_DIRECTORY = fileURLToPath(new URL('../console/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    // The login form is sent by script; without it, a form must not post a password anywhere.
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

interface ConsoleFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The files Galet serves: the known kinds in the directory, nothing below it. */
async function loadConsoleFiles(directory: string): Promise<Map<string, ConsoleFile>> {
  const files = new Map<string, ConsoleFile>();
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    const contentType = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || contentType === undefined) continue;
    const body = await readFile(join(directory, entry.name));
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
    files.set(entry.name, { body, contentType, etag: `"${hash}"` });
  }
  return files;
}

/** A Fastify plugin (encapsulated: its headers apply to its routes only). */
export async function consoleRoutes(
  app: FastifyInstance,
  options: ConsoleRouteOptions,
): Promise<void> {
  const directory = options.directory ?? CONSOLE_DIRECTORY;
  let files: Map<string, ConsoleFile>;
  try {
    files = await loadConsoleFiles(directory);
  } catch (error) {
    // A build that left the files out must not stop the network: the API still serves.
    options.logger?.warn(
      { directory, err: error },
      'the web console is not served: its files are missing (npm run build copies them)',
    );
    files = new Map();
  }

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.headers(CONSOLE_SECURITY_HEADERS);
    return payload;
  });

  app.get('/', async (_request, reply) => reply.redirect('/console/', 302));
  app.get('/console', async (_request, reply) => reply.redirect('/console/', 302));

  const send = (name: string, request: FastifyRequest, reply: FastifyReply) => {
    const file = files.get(name);
    if (file === undefined) {
      return reply.status(404).send({ error: 'NOT_FOUND', message: `no console file ${name}` });
    }
    // Cached by the browser and revalidated on each load: an upgrade never mixes the modules
    // of two versions, and an unchanged file costs a 304.
    reply.header('cache-control', 'no-cache').header('etag', file.etag);
    if (matchesEtag(request.headers['if-none-match'], file.etag)) return reply.status(304).send();
    return reply.type(file.contentType).send(file.body);
  };
  app.get('/console/', async (request, reply) => send('index.html', request, reply));
  app.get<{ Params: { file: string } }>('/console/:file', async (request, reply) =>
    send(request.params.file, request, reply),
  );
}

/** RFC 9110 §13.1.2: If-None-Match holds `*` or a list of entity tags, weak ones compared weakly. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === etag);
}
