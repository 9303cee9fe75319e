// The device -> profile -> codec cache (TTL, invalidation, object identity kept for an unchanged
// codec) and the codec setting of device profiles (pure checks).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceCodecLookup } from '../../../src/application/stage/index.js';
import {
  applyDeviceProfileSettings,
  type CodecSettings,
  defaultDeviceProfileSettings,
  MAX_CODEC_SOURCE_CHARS,
  StorageError,
} from '../../../src/storage/index.js';

function source(initial: {
  profileOf: Record<string, string | null>;
  codecOf: Record<string, CodecSettings | undefined>;
}) {
  const reads = { devices: 0, deviceQueries: 0, profiles: 0, codecProfiles: 0 };
  return {
    reads,
    state: initial,
    devices: {
      profileIdsOf: async (devEuis: Iterable<string>) => {
        reads.deviceQueries += 1;
        const found = new Map<string, string | null>();
        for (const devEui of devEuis) {
          reads.devices += 1;
          const id = initial.profileOf[devEui];
          if (id !== undefined) found.set(devEui, id);
        }
        return found;
      },
    },
    deviceProfiles: {
      get: async (id: string) => {
        reads.profiles += 1;
        return id in initial.codecOf ? { codec: initial.codecOf[id] } : undefined;
      },
      idsWithCodec: async () => {
        reads.codecProfiles += 1;
        return Object.entries(initial.codecOf)
          .filter(([, codec]) => codec !== undefined)
          .map(([id]) => id);
      },
    },
  };
}

describe('device codec lookup', () => {
  it('reads no device while no profile has a codec', async () => {
    const store = source({ profileOf: { a: 'p1', b: null }, codecOf: { p1: undefined } });
    const lookup = new DeviceCodecLookup(store, { ttlMs: 1000, now: () => 0 });
    assert.equal((await lookup.codecsOf(['a', 'b'])).size, 0);
    assert.equal((await lookup.codecsOf(['a', 'c'])).size, 0);
    assert.deepEqual(store.reads, { devices: 0, deviceQueries: 0, profiles: 0, codecProfiles: 1 });
  });

  it('reuses lookups for the TTL, then reads again', async () => {
    let nowMs = 0;
    const store = source({
      profileOf: { a: 'p1', b: 'p1', c: null },
      codecOf: { p1: { type: 'cayenne-lpp' } },
    });
    const lookup = new DeviceCodecLookup(store, { ttlMs: 1000, now: () => nowMs });
    const first = await lookup.codecsOf(['a', 'b', 'c', 'a', 'gone']);
    assert.deepEqual(first.get('a'), { profileId: 'p1', codec: { type: 'cayenne-lpp' } });
    assert.equal(first.has('c'), false, 'no profile: no codec, left out');
    assert.equal(first.has('gone'), false);
    assert.deepEqual(store.reads, { devices: 4, deviceQueries: 1, profiles: 1, codecProfiles: 1 });

    nowMs = 999;
    store.state.profileOf['a'] = null;
    await lookup.codecsOf(['a', 'b']);
    assert.deepEqual(
      store.reads,
      { devices: 4, deviceQueries: 1, profiles: 1, codecProfiles: 1 },
      'within the TTL: cached',
    );

    nowMs = 1000;
    const later = await lookup.codecsOf(['a']);
    assert.equal(later.get('a'), undefined, 'the device moved to no profile');
    assert.equal(store.reads.devices, 5);
  });

  it('keeps the same codec object while the codec is unchanged, a new one once it changes', async () => {
    let nowMs = 0;
    const store = source({
      profileOf: { a: 'p1' },
      codecOf: { p1: { type: 'javascript', source: 'function Decoder(b) { return {}; }' } },
    });
    const lookup = new DeviceCodecLookup(store, { ttlMs: 1000, now: () => nowMs });
    const before = (await lookup.codecsOf(['a'])).get('a')?.codec;
    nowMs = 5000;
    store.state.codecOf['p1'] = {
      type: 'javascript',
      source: 'function Decoder(b) { return {}; }',
    };
    const same = (await lookup.codecsOf(['a'])).get('a')?.codec;
    assert.equal(same, before, 'an unchanged source keeps its compiled codec');

    store.state.codecOf['p1'] = { type: 'cayenne-lpp' };
    lookup.profileChanged('p1');
    const changed = (await lookup.codecsOf(['a'])).get('a')?.codec;
    assert.deepEqual(changed, { type: 'cayenne-lpp' }, 'profileChanged applies at once');
  });
});

describe('device profile codec setting', () => {
  const apply = (codec: unknown) =>
    applyDeviceProfileSettings(defaultDeviceProfileSettings(), {
      codec: codec as CodecSettings,
    });
  const refused = (codec: unknown, message: RegExp) =>
    assert.throws(
      () => apply(codec),
      (error: unknown) =>
        error instanceof StorageError &&
        error.code === 'INVALID_INPUT' &&
        message.test(error.message),
    );

  it('stores javascript and Cayenne LPP codecs, and "none" as no codec', () => {
    assert.deepEqual(apply({ type: 'javascript', source: 'x' }).codec, {
      type: 'javascript',
      source: 'x',
    });
    assert.deepEqual(apply({ type: 'cayenne-lpp' }).codec, { type: 'cayenne-lpp' });
    assert.equal('codec' in apply({ type: 'none' }), false);
    assert.equal('codec' in apply(null), false);
    const base = apply({ type: 'cayenne-lpp' });
    assert.deepEqual(applyDeviceProfileSettings(base, { rx2Dr: 1 }).codec, { type: 'cayenne-lpp' });
    assert.equal('codec' in applyDeviceProfileSettings(base, { codec: null }), false);
  });

  it('refuses a codec of unknown type, without or with a misplaced or oversized source', () => {
    refused({ type: 'lua' }, /codec\.type must be one of none, cayenne-lpp, javascript/);
    refused({ type: 'javascript' }, /needs its source/);
    refused({ type: 'javascript', source: '   ' }, /needs its source/);
    refused({ type: 'cayenne-lpp', source: 'x' }, /for javascript codecs only/);
    refused(
      { type: 'javascript', source: 'x'.repeat(MAX_CODEC_SOURCE_CHARS + 1) },
      /at most 524288 characters/,
    );
  });
});
