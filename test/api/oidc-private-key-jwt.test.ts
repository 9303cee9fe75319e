import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ApiOptions } from '../../src/api/server.js';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { loadClientAssertionKey } from '../../src/platform/oidc-client-assertion.js';
import { type OidcSettings, resolveOidcSettings } from '../../src/platform/oidc-settings.js';
import { capturingLogger, type LogEntry } from '../helpers/capture.js';
import { freePort } from '../helpers/sockets.js';
import { FakeOidcProvider } from './oidc-fake-provider.js';
import { PASSWORD, type PlatformApi, startPlatformApi } from './platform-helpers.js';

/**
 * `private_key_jwt` end to end: Galet signs client assertions with a key from a PEM file, the
 * fake provider checks them with the public key Galet publishes at its JWKS URL.
 */

const CLIENT_ID = 'galet-console';
/** The provider's side needs one for its other methods; Galet is given none. */
const PROVIDER_SECRET = 'unused by private_key_jwt';

// Keys made once for the file.
const directory = mkdtempSync(join(tmpdir(), 'galet-oidc-pkjwt-'));
const pem = (key: { export(o: { type: 'pkcs8'; format: 'pem' }): string | Buffer }) =>
  key.export({ type: 'pkcs8', format: 'pem' }) as string;
function keyFile(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const RSA_FILE = keyFile('rsa.pem', pem(rsa.privateKey));
const EC_FILE = keyFile('ec.pem', pem(ec.privateKey));
const OTHER_JWK = { ...other.publicKey.export({ format: 'jwk' }), kid: 'galet-1', use: 'sig' };

interface Setup {
  api: PlatformApi;
  provider: FakeOidcProvider;
  base: string;
  logs: LogEntry[];
  close(): Promise<void>;
}

async function setUp(oidc: Partial<OidcSettings>, api: Partial<ApiOptions> = {}): Promise<Setup> {
  let platform: PlatformApi | undefined;
  const provider = await FakeOidcProvider.start({
    clientId: CLIENT_ID,
    clientSecret: PROVIDER_SECRET,
    now: () => (platform as PlatformApi).clock.now.getTime(),
  });
  provider.tokenEndpointAuthMethods = ['client_secret_basic', 'private_key_jwt'];
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logs: LogEntry[] = [];
  try {
    platform = await startPlatformApi({
      logger: capturingLogger(logs),
      oidc: {
        issuer: provider.issuer,
        clientId: CLIENT_ID,
        redirectUrl: `${base}/api/v1/auth/oidc/callback`,
        tokenEndpointAuth: 'private_key_jwt',
        ...oidc,
      },
      ...api,
    });
  } catch (error) {
    await provider.close();
    throw error;
  }
  await platform.app.listen({ host: '127.0.0.1', port });
  const tenantId = (
    await platform.request('POST', '/api/v1/tenants', { body: { name: 'Veauche' } })
  ).json.id as string;
  const created = await platform.request('POST', '/api/v1/users', {
    body: { email: 'agent@veauche.fr', password: PASSWORD, tenantId, role: 'operator' },
  });
  assert.equal(created.status, 201);
  const started = platform;
  return {
    api: started,
    provider,
    base,
    logs,
    async close() {
      await started.close();
      await provider.close();
    },
  };
}

/** Galet's published key, registered at the provider as Keycloak's "JWKS URL" would fetch it. */
async function registerGaletKey(setup: Setup): Promise<Record<string, unknown>> {
  const response = await fetch(`${setup.base}/api/v1/auth/oidc/jwks.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^application\/jwk-set\+json/);
  const { keys } = (await response.json()) as { keys: Record<string, unknown>[] };
  assert.equal(keys.length, 1);
  setup.provider.clientKeys = keys;
  return keys[0] as Record<string, unknown>;
}

/** The whole login as a script does it (JSON); answers the callback's response. */
async function login(setup: Setup): Promise<Response> {
  const start = await fetch(`${setup.base}/api/v1/auth/oidc/start`, {
    headers: { accept: 'application/json' },
  });
  assert.equal(start.status, 200);
  const { authorizationUrl } = (await start.json()) as { authorizationUrl: string };
  const flow = /galet_oidc_flow=([^;]+)/.exec(start.headers.get('set-cookie') ?? '')?.[1];
  const atProvider = await fetch(authorizationUrl, { redirect: 'manual' });
  assert.equal(atProvider.status, 302);
  return fetch(atProvider.headers.get('location') as string, {
    redirect: 'manual',
    headers: { accept: 'application/json', cookie: `galet_oidc_flow=${flow}` },
  });
}

after(() => rmSync(directory, { recursive: true, force: true }));

describe('OIDC login with private_key_jwt', () => {
  describe('RS256, audience the token endpoint', () => {
    let setup: Setup;
    before(async () => {
      setup = await setUp({ privateKeyFile: RSA_FILE, privateKeyId: 'galet-1' });
    });
    after(async () => setup.close());

    it('publishes the public key only, with its kid and algorithm', async () => {
      const jwk = await registerGaletKey(setup);
      assert.deepEqual(jwk, {
        ...rsa.publicKey.export({ format: 'jwk' }),
        kid: 'galet-1',
        alg: 'RS256',
        use: 'sig',
      });
      assert.equal(jwk['d'], undefined, 'no private part');
    });

    it('logs in with a signed client assertion and no client secret', async () => {
      await registerGaletKey(setup);
      const response = await login(setup);
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal(typeof ((await response.json()) as { token: string }).token, 'string');
      assert.deepEqual(setup.provider.seen.tokenAuth, ['private_key_jwt']);
      const [assertion] = setup.provider.seen.assertions;
      assert.deepEqual(assertion?.header, { alg: 'RS256', typ: 'JWT', kid: 'galet-1' });
      const claims = assertion?.claims ?? {};
      assert.equal(claims['iss'], CLIENT_ID);
      assert.equal(claims['sub'], CLIENT_ID);
      assert.equal(claims['aud'], `${setup.provider.issuer}/protocol/openid-connect/token`);
      assert.equal(claims['iat'], Math.floor(setup.api.clock.now.getTime() / 1000));
      assert.equal((claims['exp'] as number) - (claims['iat'] as number), 60);
      assert.match(claims['jti'] as string, /^[A-Za-z0-9_-]{24}$/);
      assert.equal(
        setup.logs.some((line) => line.level === 'warn'),
        false,
        'the provider lists private_key_jwt: no warning',
      );
    });

    it('signs each request anew: a fresh jti, never a replay', async () => {
      await registerGaletKey(setup);
      assert.equal((await login(setup)).status, 200);
      assert.equal((await login(setup)).status, 200);
      const ids = setup.provider.seen.assertions.map((a) => a.claims['jti']);
      assert.equal(new Set(ids).size, ids.length);
    });

    it('is refused when the provider holds another key for the client, and says why', async () => {
      setup.provider.clientKeys = [OTHER_JWK];
      const response = await login(setup);
      const body = (await response.json()) as { message: string; details: { reason: string } };
      assert.equal(response.status, 401);
      assert.equal(body.details.reason, 'token-refused');
      assert.match(body.message, /client authentication \(401, invalid_client\)/);
      assert.match(body.message, /public key registered/);
      assert.equal(setup.provider.seen.assertionRefusal, 'signature');
    });

    it('is refused when the provider expects another audience', async () => {
      await registerGaletKey(setup);
      setup.provider.assertionAudiences = ['https://elsewhere.example.org/token'];
      try {
        const response = await login(setup);
        assert.equal(response.status, 401);
        assert.equal(setup.provider.seen.assertionRefusal, 'aud');
      } finally {
        setup.provider.assertionAudiences = undefined;
      }
    });

    it('never logs the private key or an assertion', () => {
      const text = JSON.stringify(setup.logs);
      const d = (rsa.privateKey.export({ format: 'jwk' }) as { d: string }).d;
      assert.equal(text.includes(d), false);
      assert.equal(text.includes('PRIVATE KEY'), false);
      assert.equal(/eyJ[\w-]+\.eyJ/.test(text), false, 'no JWT in the logs');
      const started = setup.logs.find((line) => /OIDC login enabled/.test(JSON.stringify(line)));
      assert.match(JSON.stringify(started), /jwks\.json/);
      assert.match(JSON.stringify(started), /"clientAssertionAlgorithm":"RS256"/);
    });
  });

  it('logs in with ES256, the issuer as audience, no kid', async () => {
    const setup = await setUp({ privateKeyFile: EC_FILE, clientAssertionAudience: 'issuer' });
    try {
      const jwk = await registerGaletKey(setup);
      assert.equal(jwk['kty'], 'EC');
      assert.equal(jwk['crv'], 'P-256');
      assert.equal(jwk['kid'], undefined);
      const response = await login(setup);
      assert.equal(response.status, 200, await response.clone().text());
      const [assertion] = setup.provider.seen.assertions;
      assert.deepEqual(assertion?.header, { alg: 'ES256', typ: 'JWT' });
      assert.equal(assertion?.claims['aud'], setup.provider.issuer);
      // A wrong key of the right type is refused too.
      setup.provider.clientKeys = [
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }),
      ];
      assert.equal((await login(setup)).status, 401);
      assert.equal(setup.provider.seen.assertionRefusal, 'signature');
    } finally {
      await setup.close();
    }
  });

  it('warns once when the provider does not list private_key_jwt, and still tries', async () => {
    const setup = await setUp({ privateKeyFile: EC_FILE });
    try {
      setup.provider.tokenEndpointAuthMethods = ['client_secret_basic'];
      await registerGaletKey(setup);
      assert.equal((await login(setup)).status, 200);
      const warnings = setup.logs.filter((line) => line.level === 'warn');
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(
        JSON.stringify(warnings[0]),
        /does not list private_key_jwt in token_endpoint_auth_methods_supported/,
      );
    } finally {
      await setup.close();
    }
  });

  it('answers 404 at the JWKS URL when Galet authenticates with a secret', async () => {
    const setup = await setUp({ tokenEndpointAuth: 'client_secret_basic', clientSecret: 's3' });
    try {
      const response = await fetch(`${setup.base}/api/v1/auth/oidc/jwks.json`);
      assert.equal(response.status, 404);
      assert.equal(((await response.json()) as { error: string }).error, 'OIDC_NOT_CONFIGURED');
    } finally {
      await setup.close();
    }
  });
});

describe('OIDC private_key_jwt settings', () => {
  const base = {
    issuer: 'https://sso.example.org/realms/galet',
    clientId: CLIENT_ID,
    redirectUrl: 'https://galet.example.org/api/v1/auth/oidc/callback',
  };
  const keyDirectory = mkdtempSync(join(tmpdir(), 'galet-oidc-pkjwt-settings-'));
  after(() => rmSync(keyDirectory, { recursive: true, force: true }));
  const write = (name: string, text: string | Buffer) => {
    const path = join(keyDirectory, name);
    writeFileSync(path, text);
    return path;
  };

  it('needs a key file with private_key_jwt, and no secret', () => {
    assert.throws(
      () => resolveOidcSettings({ ...base, tokenEndpointAuth: 'private_key_jwt' }),
      /private_key_jwt needs a private key file/,
    );
    const resolved = resolveOidcSettings({
      ...base,
      tokenEndpointAuth: 'private_key_jwt',
      privateKeyFile: '/etc/galet/oidc.pem',
    });
    assert.equal(resolved.clientSecret, '');
    assert.equal(resolved.clientAssertionAudience, 'token-endpoint');
    assert.throws(() => resolveOidcSettings({ ...base }), /client secret must be set/);
  });

  it('refuses key settings without private_key_jwt, and bad values', () => {
    assert.throws(
      () => resolveOidcSettings({ ...base, clientSecret: 's', privateKeyFile: '/k.pem' }),
      /privateKeyFile need the token endpoint authentication private_key_jwt/,
    );
    const keyed = { ...base, tokenEndpointAuth: 'private_key_jwt', privateKeyFile: '/k.pem' };
    assert.throws(
      () =>
        resolveOidcSettings({
          ...keyed,
          clientAssertionAlgorithm: 'HS256',
        } as unknown as OidcSettings),
      /RS256 or ES256, got HS256/,
    );
    assert.throws(
      () =>
        resolveOidcSettings({ ...keyed, clientAssertionAudience: 'x' } as unknown as OidcSettings),
      /token-endpoint or issuer, got x/,
    );
    assert.throws(
      () => resolveOidcSettings({ ...keyed, privateKeyId: 'a b' } as OidcSettings),
      /private key id/,
    );
  });

  it('refuses at start a key file that is missing, not a key, or of the wrong type', async () => {
    const load = (privateKeyFile: string, algorithm?: 'RS256' | 'ES256') =>
      loadClientAssertionKey({ privateKeyFile, clientAssertionAlgorithm: algorithm });
    assert.throws(() => load(join(keyDirectory, 'absent.pem')), /cannot read .* \(ENOENT\)/);
    assert.throws(() => load(write('text.pem', 'not a key\n')), /holds no unencrypted PEM/);
    assert.throws(
      () => load(write('public.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }))),
      /holds no unencrypted PEM private key/,
    );
    assert.throws(() => load(RSA_FILE, 'ES256'), /signs RS256, not ES256.*EC P-256/);
    assert.throws(() => load(EC_FILE, 'RS256'), /signs ES256, not RS256.*RSA key/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    assert.throws(() => load(write('p384.pem', pem(p384))), /secp384r1: ES256 needs P-256/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    assert.throws(() => load(write('small.pem', pem(small))), /1024 bits: at least 2048/);
    const ed = generateKeyPairSync('ed25519').privateKey;
    assert.throws(() => load(write('ed.pem', pem(ed))), /ed25519: Galet signs with RSA/);
    assert.equal(load(RSA_FILE, 'RS256').algorithm, 'RS256');
    assert.equal(load(EC_FILE).algorithm, 'ES256');
    // The key's text never reaches a message.
    try {
      load(RSA_FILE, 'ES256');
    } catch (error) {
      assert.equal(/BEGIN|MII/.test((error as Error).message), false);
    }
    // The API does not start with a bad key file.
    await assert.rejects(
      setUp({ privateKeyFile: join(keyDirectory, 'absent.pem') }),
      /cannot read the OIDC private key file/,
    );
  });

  it('reads the private_key_jwt settings from flags and variables', () => {
    const options = resolveStartOptions(
      { oidcTokenEndpointAuth: 'private_key_jwt', oidcClientAssertionAudience: 'issuer' },
      {
        GALET_OIDC_ISSUER: base.issuer,
        GALET_OIDC_CLIENT_ID: CLIENT_ID,
        GALET_OIDC_PRIVATE_KEY_FILE: EC_FILE,
        GALET_OIDC_PRIVATE_KEY_ID: 'galet-2026',
        GALET_OIDC_CLIENT_ASSERTION_ALGORITHM: 'ES256',
      },
    );
    assert.equal(options.oidc?.tokenEndpointAuth, 'private_key_jwt');
    assert.equal(options.oidc?.privateKeyFile, EC_FILE);
    assert.equal(options.oidc?.privateKeyId, 'galet-2026');
    assert.equal(options.oidc?.clientAssertionAlgorithm, 'ES256');
    assert.equal(options.oidc?.clientAssertionAudience, 'issuer');
    assert.throws(
      () =>
        resolveStartOptions(
          { oidcTokenEndpointAuth: 'private_key_jwt' },
          { GALET_OIDC_ISSUER: base.issuer, GALET_OIDC_CLIENT_ID: CLIENT_ID },
        ),
      /OIDC login: .*needs a private key file/,
    );
  });
});
