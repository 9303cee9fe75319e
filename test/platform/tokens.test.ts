import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  API_KEY_TOKEN_PREFIX,
  constantTimeEqual,
  generateApiKeyToken,
  generateSessionToken,
  hashToken,
  parseApiKeyToken,
  SESSION_TOKEN_PREFIX,
  sessionIdHash,
  tokenKind,
  tokenMatchesHash,
} from '../../src/platform/tokens.js';

describe('API key tokens', () => {
  it('carry a public id and 32 random bytes, and store as SHA-256', () => {
    const key = generateApiKeyToken();
    assert.match(key.id, /^[0-9a-f]{16}$/);
    assert.match(key.token, /^galet_key_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.ok(key.token.startsWith(`${API_KEY_TOKEN_PREFIX}${key.id}_`));
    assert.deepEqual(
      key.secretHash,
      new Uint8Array(createHash('sha256').update(key.token).digest()),
    );
    assert.deepEqual(parseApiKeyToken(key.token), { id: key.id });
    assert.equal(tokenKind(key.token), 'api-key');
  });

  it('are all different', () => {
    const tokens = new Set(Array.from({ length: 200 }, () => generateApiKeyToken().token));
    const ids = new Set([...tokens].map((token) => parseApiKeyToken(token)!.id));
    assert.equal(tokens.size, 200);
    assert.equal(ids.size, 200);
  });

  it('match their hash only, in constant time', () => {
    const key = generateApiKeyToken();
    assert.equal(tokenMatchesHash(key.token, key.secretHash), true);
    const tampered = `${key.token.slice(0, -1)}${key.token.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(tokenMatchesHash(tampered, key.secretHash), false);
    assert.equal(tokenMatchesHash(key.token, new Uint8Array(32)), false);
    assert.equal(tokenMatchesHash(key.token, new Uint8Array(5)), false);
  });

  it('parse nothing else', () => {
    const key = generateApiKeyToken();
    for (const text of [
      '',
      'galet_key_',
      key.token.toUpperCase(),
      `${key.token}x`,
      key.token.slice(0, -1),
      key.token.replace('galet_key_', 'galet_kay_'),
      `galet_key_${'G'.repeat(16)}_${'a'.repeat(43)}`,
      42 as never,
    ]) {
      assert.equal(parseApiKeyToken(text), undefined, String(text));
    }
  });
});

describe('session tokens', () => {
  it('are stored as the hex SHA-256 of the token', () => {
    const session = generateSessionToken();
    assert.match(session.token, /^galet_session_[A-Za-z0-9_-]{43}$/);
    assert.ok(session.token.startsWith(SESSION_TOKEN_PREFIX));
    assert.equal(session.idHash, createHash('sha256').update(session.token).digest('hex'));
    assert.equal(sessionIdHash(session.token), session.idHash);
    assert.equal(tokenKind(session.token), 'session');
    assert.notEqual(generateSessionToken().token, session.token);
  });

  it('hash nothing that is not a session token', () => {
    assert.equal(sessionIdHash('galet_session_short'), undefined);
    assert.equal(sessionIdHash(generateApiKeyToken().token), undefined);
    assert.equal(tokenKind('some-admin-token-0123456789'), 'other');
  });
});

describe('constant-time equality', () => {
  it('compares bytes, different lengths being unequal', () => {
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
    assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3])), false);
    assert.deepEqual(hashToken('abc'), hashToken('abc'));
  });
});
