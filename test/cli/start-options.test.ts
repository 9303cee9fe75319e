import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { DEFAULT_OPTIONS } from '../../src/server/galet.js';

describe('galet start settings', () => {
  it('uses the defaults when nothing is given', () => {
    assert.deepEqual(resolveStartOptions({}, {}), DEFAULT_OPTIONS);
  });

  it('takes flags over environment variables over the config file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-config-'));
    try {
      const file = join(dir, 'galet.json');
      await writeFile(
        file,
        JSON.stringify({ udpPort: 1701, httpPort: 8081, netId: '000013', dataDir: '/srv/galet' }),
      );
      const resolved = resolveStartOptions(
        { config: file, httpPort: '9000' },
        { GALET_UDP_PORT: '1702', GALET_DEDUP_WINDOW_MS: '150' },
      );
      assert.equal(resolved.httpPort, 9000, 'flag wins');
      assert.equal(resolved.udpPort, 1702, 'environment beats the file');
      assert.equal(resolved.netId, 0x13, 'file beats the default');
      assert.equal(resolved.dataDir, '/srv/galet');
      assert.equal(resolved.deduplicationWindowMs, 150);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the setting when a value or the file is wrong', async () => {
    assert.throws(
      () => resolveStartOptions({ udpPort: '70000' }, {}),
      /--udp-port must be an integer from 0 to 65535/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_NET_ID: 'xyz' }),
      /GALET_NET_ID must be 6 hex digits/,
    );
    assert.throws(
      () => resolveStartOptions({}, { GALET_ALLOW_UNKNOWN_GATEWAYS: 'maybe' }),
      /must be true or false/,
    );
    assert.throws(
      () => resolveStartOptions({ config: '/nonexistent/galet.json' }, {}),
      /cannot read config file/,
    );
    const dir = await mkdtemp(join(tmpdir(), 'galet-config-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(file, JSON.stringify({ udpPrt: 1 }));
      assert.throws(() => resolveStartOptions({ config: file }, {}), /unknown setting "udpPrt"/);
      await writeFile(file, '{oops');
      assert.throws(() => resolveStartOptions({ config: file }, {}), /is not valid JSON/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
