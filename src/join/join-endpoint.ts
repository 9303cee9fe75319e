import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../logger.js';
import type { JoinAnsKeks } from './backend-join.js';
import {
  type CallerCheck,
  type JoinEndpointCaller,
  type JoinEndpointCounters,
  joinReqRequestHandler,
  newJoinEndpointCounters,
} from './http-join-server.js';
import type { JoinServer } from './join-server.js';
import {
  readCertificateFile,
  readKekFile,
  readPrivateKeyFile,
  readTokenFile,
} from './secret-files.js';

/**
 * The join role's Backend Interfaces endpoint (issue 5): the `joinEndpoint` setting, who may
 * call (the networks listed, each with a bearer token, a client certificate chaining to its CA,
 * or both), the KEK each network's answers are wrapped with, and where it is served: POST
 * `BACKEND_INTERFACES_PATH` on the HTTP API's port, and on an HTTPS port of its own with
 * client certificates when `tls` is set.
 */
export const BACKEND_INTERFACES_PATH = '/api/v1/backend-interfaces';

/** One network allowed to send JoinReqs. At least one of tokenFile and clientCaFile. */
export interface JoinEndpointNetworkSetting {
  /** Logs and metrics (`kind` label): letters, digits, `.`, `_`, `-`. */
  name: string;
  /** The KEK shared with this network: its answers' network session keys are wrapped under it. */
  kekLabel: string;
  kekFile: string;
  /** The bearer token this network sends, alone in a file (kept as its SHA-256 only). */
  tokenFile?: string;
  /** PEM CA(s): this network's client certificates must chain to one (the HTTPS port only). */
  clientCaFile?: string;
}

export interface JoinEndpointSetting {
  networks: JoinEndpointNetworkSetting[];
  /** An HTTPS listener of the endpoint alone, for client certificates (mutual TLS). */
  tls?: { port: number; certFile: string; keyFile: string };
}

/** A refused `joinEndpoint` setting: the message names the field and the reason. */
export class JoinEndpointSettingError extends Error {
  override readonly name = 'JoinEndpointSettingError';
}

const NETWORK_KEYS = new Set(['name', 'kekLabel', 'kekFile', 'tokenFile', 'clientCaFile']);
const TLS_KEYS = new Set(['port', 'certFile', 'keyFile']);
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const KEK_LABEL = /^[\x21-\x7e]{1,128}$/;
/** How far up a client's chain the CA of a network is looked for. */
const MAX_CHAIN_DEPTH = 8;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The `joinEndpoint` setting checked (fields only; the files are read by loadJoinEndpoint). */
export function parseJoinEndpointSetting(value: unknown): JoinEndpointSetting {
  const Fail = JoinEndpointSettingError;
  if (!isObject(value)) {
    throw new Fail('joinEndpoint must be an object {"networks": [...], "tls"?: {...}}');
  }
  for (const key of Object.keys(value)) {
    if (key !== 'networks' && key !== 'tls') {
      throw new Fail(`joinEndpoint: unknown field "${key}"`);
    }
  }
  const text = (fields: Record<string, unknown>, key: string, where: string): string => {
    const field = fields[key];
    if (typeof field !== 'string' || field === '') {
      throw new Fail(`${where}: ${key} must be a non-empty string`);
    }
    return field;
  };
  const networks = value['networks'];
  if (!Array.isArray(networks) || networks.length === 0) {
    throw new Fail('joinEndpoint.networks must list at least one network');
  }
  const names = new Set<string>();
  const parsed = networks.map((entry: unknown, index): JoinEndpointNetworkSetting => {
    const where = `joinEndpoint.networks[${index}]`;
    if (!isObject(entry)) throw new Fail(`${where} must be an object`);
    for (const key of Object.keys(entry)) {
      if (!NETWORK_KEYS.has(key)) throw new Fail(`${where}: unknown field "${key}"`);
    }
    const name = text(entry, 'name', where);
    if (!NAME.test(name)) {
      throw new Fail(`${where}: name must be 1 to 64 letters, digits, ".", "_" or "-"`);
    }
    if (names.has(name)) throw new Fail(`${where}: the name ${name} is given twice`);
    names.add(name);
    const kekLabel = text(entry, 'kekLabel', where);
    if (!KEK_LABEL.test(kekLabel)) {
      throw new Fail(`${where}: kekLabel must be 1 to 128 printable characters`);
    }
    const optional = (key: string) =>
      entry[key] === undefined ? undefined : text(entry, key, where);
    const tokenFile = optional('tokenFile');
    const clientCaFile = optional('clientCaFile');
    if (tokenFile === undefined && clientCaFile === undefined) {
      throw new Fail(
        `${where}: give tokenFile, clientCaFile or both: a network with no credential would let anyone in`,
      );
    }
    if (clientCaFile !== undefined && value['tls'] === undefined) {
      throw new Fail(
        `${where}: clientCaFile needs joinEndpoint.tls (client certificates come over its HTTPS port)`,
      );
    }
    return {
      name,
      kekLabel,
      kekFile: text(entry, 'kekFile', where),
      ...(tokenFile === undefined ? {} : { tokenFile }),
      ...(clientCaFile === undefined ? {} : { clientCaFile }),
    };
  });
  let tls: JoinEndpointSetting['tls'];
  if (value['tls'] !== undefined) {
    const fields = value['tls'];
    if (!isObject(fields)) {
      throw new Fail('joinEndpoint.tls must be an object {"port", "certFile", "keyFile"}');
    }
    for (const key of Object.keys(fields)) {
      if (!TLS_KEYS.has(key)) throw new Fail(`joinEndpoint.tls: unknown field "${key}"`);
    }
    const port = fields['port'];
    if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
      throw new Fail('joinEndpoint.tls: port must be an integer from 0 to 65535');
    }
    tls = {
      port: port as number,
      certFile: text(fields, 'certFile', 'joinEndpoint.tls'),
      keyFile: text(fields, 'keyFile', 'joinEndpoint.tls'),
    };
  }
  return { networks: parsed, ...(tls === undefined ? {} : { tls }) };
}

interface AllowedNetwork {
  caller: JoinEndpointCaller;
  /** SHA-256 of its token. */
  tokenHash?: Buffer;
  clientCas?: X509Certificate[];
}

/** The HTTPS listener's key and certificate, and the CAs client certificates may chain to (PEM). */
interface TlsMaterial {
  port: number;
  key: string;
  cert: string;
  clientCas: string[];
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * Whether the client's certificate chains to one of `cas`: from the certificate the client
 * proved it holds the key of, up through certificates that each signed the one below (checked
 * here, not taken from the order the client sent them in), to a certificate a CA signed.
 */
function chainsTo(peer: DetailedPeerCertificate, cas: readonly X509Certificate[]): boolean {
  const presented: X509Certificate[] = [];
  const seen = new Set<string>();
  let entry: DetailedPeerCertificate | undefined = peer;
  while (entry?.raw !== undefined && presented.length < MAX_CHAIN_DEPTH * 2) {
    const certificate = new X509Certificate(entry.raw);
    if (seen.has(certificate.fingerprint256)) break;
    seen.add(certificate.fingerprint256);
    presented.push(certificate);
    entry = entry.issuerCertificate;
  }
  const signedBy = (certificate: X509Certificate, issuer: X509Certificate) =>
    certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);
  let current = presented[0];
  for (let depth = 0; current !== undefined && depth < MAX_CHAIN_DEPTH; depth++) {
    const at = current;
    if (cas.some((ca) => ca.fingerprint256 === at.fingerprint256 || signedBy(at, ca))) return true;
    current = presented.find((candidate) => candidate !== at && signedBy(at, candidate));
  }
  return false;
}

/** The endpoint, its files read: who may call, the handler, its counters and listeners. */
export class JoinEndpoint {
  readonly #networks: AllowedNetwork[];
  readonly #counters: JoinEndpointCounters;
  readonly #handler: (request: IncomingMessage, response: ServerResponse) => void;
  readonly #tls: TlsMaterial | undefined;

  private constructor(
    networks: AllowedNetwork[],
    tls: TlsMaterial | undefined,
    joinServer: JoinServer,
    logger: Logger,
  ) {
    this.#networks = networks;
    this.#tls = tls;
    this.#counters = newJoinEndpointCounters(networks.map((network) => network.caller.name));
    this.#handler = joinReqRequestHandler({
      joinServer,
      logger,
      counters: this.#counters,
      authenticate: (request) => this.authenticate(request),
    });
  }

  /**
   * Reads the KEK, token and certificate files of `setting` (errors name the field and the
   * file, never a secret). `applicationKek` wraps every AppSKey handed out: this Galet's
   * application role, which receives the uplinks over its provider link, opens them.
   */
  static async load(
    setting: JoinEndpointSetting,
    options: {
      joinServer: JoinServer;
      applicationKek: JoinAnsKeks['application'];
      logger: Logger;
    },
  ): Promise<JoinEndpoint> {
    const Fail = JoinEndpointSettingError;
    const checked = parseJoinEndpointSetting(setting);
    const networks: AllowedNetwork[] = [];
    for (const [index, network] of checked.networks.entries()) {
      const where = `joinEndpoint.networks[${index}]`;
      const key = await readKekFile(network.kekFile, where, Fail, options.logger);
      const token =
        network.tokenFile === undefined
          ? undefined
          : await readTokenFile(network.tokenFile, where, Fail, options.logger);
      const tokenHash = token === undefined ? undefined : sha256(token);
      const twin = networks.find(
        (other) => other.tokenHash !== undefined && tokenHash?.equals(other.tokenHash) === true,
      );
      if (twin !== undefined) {
        throw new Fail(
          `${where}: the same token as network ${twin.caller.name}: each network needs its own`,
        );
      }
      const clientCas =
        network.clientCaFile === undefined
          ? undefined
          : (await readCertificateFile(network.clientCaFile, where, 'clientCaFile', Fail))
              .certificates;
      networks.push({
        caller: {
          name: network.name,
          keks: {
            network: { label: network.kekLabel, key },
            application: options.applicationKek,
          },
        },
        ...(tokenHash === undefined ? {} : { tokenHash }),
        ...(clientCas === undefined ? {} : { clientCas }),
      });
    }
    let tls: TlsMaterial | undefined;
    if (checked.tls !== undefined) {
      const where = 'joinEndpoint.tls';
      tls = {
        port: checked.tls.port,
        cert: (await readCertificateFile(checked.tls.certFile, where, 'certFile', Fail)).pem,
        key: await readPrivateKeyFile(checked.tls.keyFile, where, 'keyFile', Fail, options.logger),
        clientCas: networks.flatMap((network) =>
          (network.clientCas ?? []).map((certificate) => certificate.toString()),
        ),
      };
    }
    return new JoinEndpoint(networks, tls, options.joinServer, options.logger);
  }

  /** The network a request comes from, or why it is refused (see CallerCheck). */
  authenticate(request: IncomingMessage): ReturnType<CallerCheck> {
    const header = request.headers.authorization;
    let tokenHash: Buffer | undefined;
    if (header !== undefined) {
      const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(header);
      if (match === null) {
        return {
          refused: 'malformed-authorization',
          detail: 'Authorization is not "Bearer <token>"',
        };
      }
      tokenHash = sha256(match[1]!);
    }
    let byToken: AllowedNetwork | undefined;
    if (tokenHash !== undefined) {
      for (const network of this.#networks) {
        // Every stored hash compared, in constant time each.
        if (network.tokenHash !== undefined && timingSafeEqual(network.tokenHash, tokenHash)) {
          byToken = network;
        }
      }
    }
    const socket = request.socket;
    let certificate: 'none' | 'untrusted' | 'trusted' = 'none';
    let certificateError = '';
    const byCertificate = new Set<AllowedNetwork>();
    if (socket instanceof TLSSocket) {
      const peer = socket.getPeerCertificate(true);
      if (peer !== null && peer.raw !== undefined) {
        if (!socket.authorized) {
          certificate = 'untrusted';
          certificateError = String(socket.authorizationError ?? 'not trusted');
        } else {
          for (const network of this.#networks) {
            if (network.clientCas !== undefined && chainsTo(peer, network.clientCas)) {
              byCertificate.add(network);
            }
          }
          certificate = byCertificate.size > 0 ? 'trusted' : 'untrusted';
          if (byCertificate.size === 0) certificateError = 'chains to no network CA';
        }
      }
    }
    // A token given must be a network's, even when a certificate alone would do.
    if (tokenHash !== undefined && byToken === undefined) {
      return { refused: 'wrong-token', detail: 'the bearer token is not one of a network' };
    }
    const satisfied = this.#networks.filter(
      (network) =>
        (network.tokenHash === undefined || network === byToken) &&
        (network.clientCas === undefined || byCertificate.has(network)),
    );
    const chosen =
      byToken !== undefined && satisfied.includes(byToken)
        ? byToken
        : satisfied.length === 1
          ? satisfied[0]
          : undefined;
    if (chosen !== undefined) return { caller: chosen.caller };
    if (certificate === 'untrusted') {
      return {
        refused: 'untrusted-certificate',
        detail: `client certificate: ${certificateError}`,
      };
    }
    if (tokenHash === undefined && certificate === 'none') {
      return { refused: 'no-credentials', detail: 'no bearer token and no client certificate' };
    }
    if (satisfied.length > 1) {
      return { refused: 'ambiguous', detail: 'the credentials fit several networks' };
    }
    return {
      refused: 'incomplete-credentials',
      detail:
        byToken !== undefined
          ? `network ${byToken.caller.name} needs a client certificate too`
          : 'the network of this client certificate needs a bearer token too',
    };
  }

  /** Counters for the metrics (`galet_join_endpoint_*`). */
  counters(): JoinEndpointCounters {
    const copy = (counter: Record<string, number>) => ({ ...counter });
    return {
      joinRequests: copy(this.#counters.joinRequests),
      joinsAccepted: copy(this.#counters.joinsAccepted),
      joinsRefused: copy(this.#counters.joinsRefused),
      requestsUnauthorized: copy(this.#counters.requestsUnauthorized),
      requestsMalformed: copy(this.#counters.requestsMalformed),
    };
  }

  /**
   * POST `BACKEND_INTERFACES_PATH` on the API: in a scope of its own, outside the API's
   * credentials (the endpoint checks its own) and body parsing (it reads the body itself, 64 KiB
   * at most, so that every refusal is a Backend Interfaces answer).
   */
  async mount(app: FastifyInstance): Promise<void> {
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, _payload, done) => done(null));
      scope.post(
        BACKEND_INTERFACES_PATH,
        {
          schema: {
            summary: 'LoRaWAN Backend Interfaces JoinReq or RejoinReq (join role, joinEndpoint)',
            description:
              'Answered with the JoinAns or RejoinAns. A network authenticates with its bearer token (docs/operator-blind.md).',
            tags: ['backend-interfaces'],
          },
        },
        (request, reply) => {
          reply.hijack();
          this.#handler(request.raw, reply.raw);
        },
      );
    });
  }

  /**
   * The HTTPS listener when `tls` is set (else undefined): the endpoint alone, asking for client
   * certificates (a client without one still gets an answer: 401 when its network needs one).
   */
  async listenTls(host: string): Promise<{ port: number; close(): Promise<void> } | undefined> {
    const tls = this.#tls;
    if (tls === undefined) return undefined;
    const server = createHttpsServer(
      {
        key: tls.key,
        cert: tls.cert,
        minVersion: 'TLSv1.2',
        ...(tls.clientCas.length === 0
          ? {}
          : { ca: tls.clientCas, requestCert: true, rejectUnauthorized: false }),
      },
      (request, response) => {
        const path = (request.url ?? '').split('?')[0];
        if (path !== BACKEND_INTERFACES_PATH) {
          response.writeHead(404, { 'content-type': 'application/json' });
          response.end(
            JSON.stringify({
              error: 'NOT_FOUND',
              message: `this port serves POST ${BACKEND_INTERFACES_PATH} only`,
            }),
          );
          return;
        }
        this.#handler(request, response);
      },
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(tls.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return {
      port: (server.address() as AddressInfo).port,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }
}
