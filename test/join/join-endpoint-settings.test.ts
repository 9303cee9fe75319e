/**
 * The settings around Backend Interfaces over HTTP (issue 5): the join role's `joinEndpoint`
 * (who may call, with which KEK and credential) and the credentials of the network's
 * `joinServers` entries, checked when Galet starts; and the endpoint's refusals in isolation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { listenHttpJoinServer, newJoinEndpointCounters } from '../../src/join/http-join-server.js';
import {
  JoinEndpoint,
  type JoinEndpointSetting,
  JoinEndpointSettingError,
  parseJoinEndpointSetting,
} from '../../src/join/join-endpoint.js';
import { LocalJoinServer } from '../../src/join/join-server.js';
import {
  loadJoinServerRoutes,
  parseJoinServerSettings,
} from '../../src/join/join-server-directory.js';
import { silentLogger } from '../../src/logger.js';
import { capturingLogger, type LogEntry } from '../helpers/capture.js';
import { findOpenssl, makeCertificates } from './certificates.js';
import { MemoryJoinStore } from './helpers.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'galet-join-endpoint-settings-'));
  dirs.push(dir);
  return dir;
}

const APPLICATION_KEK = { label: 'galet-app:0011223344556677', key: new Uint8Array(16).fill(7) };

/** A request as the endpoint's authentication sees it, on a plain (not TLS) connection. */
function plainRequest(authorization?: string): IncomingMessage {
  return {
    headers: authorization === undefined ? {} : { authorization },
    socket: new Socket(),
  } as unknown as IncomingMessage;
}

describe('joinEndpoint setting', () => {
  const network = {
    name: 'syndicate',
    kekLabel: 'syndicate.js',
    kekFile: '/etc/galet/syndicate.kek',
    tokenFile: '/etc/galet/syndicate.token',
  };

  it('checks every field, and that each network has a credential', () => {
    const setting: JoinEndpointSetting = { networks: [network] };
    assert.deepEqual(parseJoinEndpointSetting(setting), setting);
    const withTls = {
      networks: [{ ...network, clientCaFile: '/etc/galet/syndicate-ca.pem' }],
      tls: { port: 8443, certFile: '/etc/galet/js.pem', keyFile: '/etc/galet/js.key' },
    };
    assert.deepEqual(parseJoinEndpointSetting(withTls), withTls);
    const { tokenFile: _, ...noToken } = network;
    const bad: [unknown, RegExp][] = [
      [[], /joinEndpoint must be an object/],
      [{ networks: [] }, /networks must list at least one network/],
      [{ networks: [network], extra: 1 }, /joinEndpoint: unknown field "extra"/],
      [{ networks: [{ ...network, token: 'x' }] }, /networks\[0\]: unknown field "token"/],
      [{ networks: [{ ...network, name: 'has space' }] }, /name must be 1 to 64 letters/],
      [{ networks: [network, network] }, /networks\[1\]: the name syndicate is given twice/],
      [{ networks: [{ ...network, kekLabel: '' }] }, /kekLabel must be a non-empty string/],
      [{ networks: [noToken] }, /give tokenFile, clientCaFile or both/],
      [
        { networks: [{ ...noToken, clientCaFile: '/ca.pem' }] },
        /clientCaFile needs joinEndpoint.tls/,
      ],
      [{ networks: [network], tls: { port: 70000, certFile: 'a', keyFile: 'b' } }, /port must be/],
      [{ networks: [network], tls: { port: 1, certFile: 'a' } }, /keyFile must be a non-empty/],
    ];
    for (const [value, message] of bad) {
      assert.throws(() => parseJoinEndpointSetting(value), message);
    }
  });

  it('comes from the config file, GALET_JOIN_ENDPOINT or --join-endpoint, for roles join,application only', async () => {
    const dir = await tempDir();
    const config = join(dir, 'galet.json');
    const setting = { networks: [network] };
    await writeFile(config, JSON.stringify({ roles: 'join,application', joinEndpoint: setting }));
    assert.deepEqual(resolveStartOptions({ config }, {}).joinEndpoint, setting);
    assert.deepEqual(
      resolveStartOptions(
        { roles: 'join,application' },
        { GALET_JOIN_ENDPOINT: JSON.stringify(setting) },
      ).joinEndpoint,
      setting,
    );
    assert.throws(
      () => resolveStartOptions({ roles: 'join,application', joinEndpoint: '{"networks":' }, {}),
      /--join-endpoint must be a JSON object/,
    );
    assert.throws(
      () =>
        resolveStartOptions({ roles: 'join,application', joinEndpoint: '{"networks": []}' }, {}),
      /--join-endpoint: joinEndpoint.networks must list at least one network/,
    );
    // The AppSKey it hands out is for a provider's application role: not all-in-one, not network.
    for (const roles of [undefined, 'network']) {
      assert.throws(
        () =>
          resolveStartOptions(
            { ...(roles === undefined ? {} : { roles }), joinEndpoint: JSON.stringify(setting) },
            {},
          ),
        /--join-endpoint \(GALET_JOIN_ENDPOINT, config "joinEndpoint"\) is a setting of roles join,application/,
      );
    }
  });

  it('reads the KEK and token files, refuses a weak or shared token, names what is missing', async () => {
    const dir = await tempDir();
    const kekFile = join(dir, 'syndicate.kek');
    const tokenFile = join(dir, 'syndicate.token');
    const otherTokenFile = join(dir, 'other.token');
    const token = randomBytes(20).toString('hex');
    await writeFile(kekFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    await writeFile(otherTokenFile, `${randomBytes(20).toString('hex')}\n`, { mode: 0o600 });
    const log: LogEntry[] = [];
    const load = (setting: JoinEndpointSetting) =>
      JoinEndpoint.load(setting, {
        joinServer: new LocalJoinServer(new MemoryJoinStore()),
        applicationKek: APPLICATION_KEK,
        logger: capturingLogger(log),
      });
    const syndicate = { name: 'syndicate', kekLabel: 'syndicate.js', kekFile, tokenFile };
    const endpoint = await load({
      networks: [
        syndicate,
        { name: 'other', kekLabel: 'other.js', kekFile, tokenFile: otherTokenFile },
      ],
    });
    assert.equal(log.length, 0);
    const let_in = endpoint.authenticate(plainRequest(`Bearer ${token}`));
    assert.ok('caller' in let_in);
    assert.equal(let_in.caller.name, 'syndicate');
    assert.equal(let_in.caller.keks.network.label, 'syndicate.js');
    assert.deepEqual(let_in.caller.keks.application, APPLICATION_KEK);
    const refusal = (authorization?: string) => {
      const checked = endpoint.authenticate(plainRequest(authorization));
      return 'refused' in checked ? checked.refused : `let in as ${checked.caller.name}`;
    };
    assert.equal(refusal(`bearer   ${token}`), 'let in as syndicate', 'scheme in any case');
    assert.equal(refusal(), 'no-credentials');
    assert.equal(refusal(`Bearer ${token}x`), 'wrong-token');
    assert.equal(refusal(`Token ${token}`), 'malformed-authorization');
    assert.deepEqual(endpoint.counters().joinRequests, { syndicate: 0, other: 0 });

    // A CA file without a certificate is named.
    const caFile = join(dir, 'ca.pem');
    const keyFile = join(dir, 'unused.key');
    await writeFile(keyFile, '-----BEGIN PRIVATE KEY-----\nMC4=\n-----END PRIVATE KEY-----\n', {
      mode: 0o600,
    });
    await writeFile(caFile, 'not a certificate');
    await assert.rejects(
      load({
        networks: [{ ...syndicate, clientCaFile: caFile }],
        tls: { port: 0, certFile: caFile, keyFile },
      }),
      /joinEndpoint.networks\[0\]: clientCaFile .*ca\.pem holds no PEM certificate/,
    );

    await writeFile(otherTokenFile, `${token}\n`, { mode: 0o600 });
    await assert.rejects(
      load({
        networks: [syndicate, { name: 'other', kekLabel: 'o', kekFile, tokenFile: otherTokenFile }],
      }),
      /networks\[1\]: the same token as network syndicate: each network needs its own/,
    );
    await writeFile(tokenFile, 'short\n', { mode: 0o600 });
    await assert.rejects(
      load({ networks: [syndicate] }),
      /networks\[0\]: tokenFile .* must hold one token of 16 to 512 visible ASCII characters/,
    );
    await writeFile(tokenFile, `${token}\n`);
    await chmod(tokenFile, 0o644);
    await load({ networks: [syndicate] });
    assert.deepEqual(
      log.map((entry) => entry.message),
      ['Backend Interfaces token file is readable by other users; chmod 600 it'],
    );
    await assert.rejects(
      load({ networks: [{ ...syndicate, kekFile: join(dir, 'none.kek') }] }),
      (error: unknown) => {
        assert.ok(error instanceof JoinEndpointSettingError);
        assert.match(error.message, /networks\[0\]: cannot read kekFile .*none\.kek/);
        return true;
      },
    );
    // No message names the token itself.
    assert.equal(JSON.stringify(log).includes(token), false);
  });

  it('does not let in with its token alone a network that needs a client certificate too', async (t) => {
    const openssl = await findOpenssl();
    if (openssl === undefined) return t.skip('openssl is not installed');
    const dir = await tempDir();
    const certs = await makeCertificates(openssl, dir);
    const kekFile = join(dir, 'syndicate.kek');
    const tokenFile = join(dir, 'syndicate.token');
    const token = randomBytes(20).toString('hex');
    await writeFile(kekFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    await writeFile(tokenFile, token, { mode: 0o600 });
    const endpoint = await JoinEndpoint.load(
      {
        networks: [
          { name: 'syndicate', kekLabel: 's', kekFile, tokenFile, clientCaFile: certs.ca },
        ],
        tls: { port: 0, certFile: certs.serverCert, keyFile: certs.serverKey },
      },
      {
        joinServer: new LocalJoinServer(new MemoryJoinStore()),
        applicationKek: APPLICATION_KEK,
        logger: silentLogger,
      },
    );
    const checked = endpoint.authenticate(plainRequest(`Bearer ${token}`));
    assert.deepEqual(checked, {
      refused: 'incomplete-credentials',
      detail: 'network syndicate needs a client certificate too',
    });
  });

  it('answers a request that is not a POST in Backend Interfaces form, counted', async () => {
    const counters = newJoinEndpointCounters();
    const log: LogEntry[] = [];
    const server = await listenHttpJoinServer({
      host: '127.0.0.1',
      port: 0,
      joinServer: new LocalJoinServer(new MemoryJoinStore()),
      keks: { network: { label: 'n', key: new Uint8Array(16) }, application: APPLICATION_KEK },
      counters,
      logger: capturingLogger(log),
    });
    try {
      const response = await fetch(server.url);
      assert.equal(response.status, 405);
      const body = (await response.json()) as {
        MessageType: string;
        Result: { ResultCode: string };
      };
      assert.equal(body.MessageType, 'JoinAns');
      assert.equal(body.Result.ResultCode, 'MalformedRequest');
      assert.deepEqual(counters.requestsMalformed, { 'not-post': 1 });
      assert.equal(log[0]?.fields['reason'], 'not-post');
    } finally {
      await server.close();
    }
  });
});

describe('joinServers credentials', () => {
  const entry = {
    joinEuiPrefix: '70b3d57ed0000000/36',
    url: 'https://js.example.org/bi',
    kekLabel: 'js.example.org',
    kekFile: '/etc/galet/js.kek',
  };
  const token = 'bi_0123456789abcdef0123';

  it('takes a token or a token file, and TLS files for https, checking each', () => {
    const withCredentials = {
      ...entry,
      tokenFile: '/etc/galet/js.token',
      tls: { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/c.key' },
    };
    assert.deepEqual(parseJoinServerSettings([withCredentials]), [withCredentials]);
    for (const url of ['http://127.0.0.1:8090/bi', 'http://localhost/bi', 'http://[::1]:80/']) {
      assert.deepEqual(parseJoinServerSettings([{ ...entry, url, token }]), [
        { ...entry, url, token },
      ]);
    }
    const bad: [unknown, RegExp][] = [
      [
        { ...entry, url: 'http://js.example.org/bi', token },
        /joinServers\[0\]: the token would cross the network in clear to js\.example\.org: use an https:\/\/ url/,
      ],
      [
        { ...entry, url: 'http://10.0.0.5:8090/bi', tokenFile: '/t' },
        /the token would cross the network in clear to 10\.0\.0\.5:8090/,
      ],
      [{ ...entry, token, tokenFile: '/t' }, /give token or tokenFile, not both/],
      [{ ...entry, token: 'short' }, /token must be 16 to 512 visible ASCII characters/],
      [{ ...entry, url: 'http://127.0.0.1/bi', tls: { caFile: '/ca' } }, /tls needs an https/],
      [{ ...entry, tls: { certFile: '/c.pem' } }, /give certFile and keyFile together/],
      [{ ...entry, tls: { ca: '/x' } }, /joinServers\[0\]\.tls: unknown field "ca"/],
      [{ ...entry, tls: 'yes' }, /tls must be an object/],
    ];
    for (const [value, message] of bad) {
      assert.throws(() => parseJoinServerSettings([value]), message);
    }
  });

  it('reads the token and TLS files when Galet starts, naming a missing one', async () => {
    const dir = await tempDir();
    const kekFile = join(dir, 'js.kek');
    const tokenFile = join(dir, 'js.token');
    await writeFile(kekFile, randomBytes(16).toString('hex'), { mode: 0o600 });
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
    const routes = await loadJoinServerRoutes([{ ...entry, kekFile, tokenFile }], silentLogger);
    assert.equal(routes.lookup('70b3d57ed0000001')?.token, token);
    const inline = await loadJoinServerRoutes([{ ...entry, kekFile, token }], silentLogger);
    assert.equal(inline.lookup('70b3d57ed0000001')?.token, token);
    await assert.rejects(
      loadJoinServerRoutes([{ ...entry, kekFile, tls: { caFile: join(dir, 'none.pem') } }]),
      /joinServers\[0\]\.tls: cannot read caFile .*none\.pem/,
    );
    await assert.rejects(
      loadJoinServerRoutes([{ ...entry, kekFile, tokenFile: join(dir, 'none.token') }]),
      /joinServers\[0\]: cannot read tokenFile .*none\.token/,
    );
  });
});
