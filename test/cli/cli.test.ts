import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type CliRun, galetCli } from './run-cli.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/lorawan-vectors.json', import.meta.url), 'utf8'),
) as { vectors: Array<Record<string, unknown> & { id: string; kind: string }> };

function vector(id: string): Record<string, unknown> {
  const found = fixture.vectors.find((v) => v.id === id);
  assert.ok(found, `vector ${id}`);
  return found;
}

/** `galet <args>` as a child process, `input` on its standard input. */
function galet(args: string[], input?: string): Promise<CliRun> {
  return galetCli(args, {}, input);
}

function json(run: CliRun): Record<string, unknown> {
  assert.equal(run.status, 0, `exit status 0 (stderr: ${run.stderr})`);
  return JSON.parse(run.stdout) as Record<string, unknown>;
}

function assertOneLineError(run: CliRun, pattern: RegExp): void {
  assert.notEqual(run.status, 0);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr, got: ${run.stderr}`);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
}

describe('galet command line', { concurrency: 4 }, () => {
  it('prints its version and commands when run without arguments', async () => {
    const run = await galet([]);
    assert.equal(run.status, 0);
    assert.match(run.stdout, /^galet \d+\.\d+\.\d+/);
    for (const command of ['frame', 'keys', 'airtime'])
      assert.match(run.stdout, new RegExp(command));
  });

  it('decodes a 1.0 data uplink with the field names of the shared vectors', async () => {
    const v = vector('lp-data-1');
    const out = json(
      await galet([
        'frame',
        'decode',
        v['phy'] as string,
        '--nwk-s-key',
        v['nwkSKey'] as string,
        '--app-s-key',
        v['appSKey'] as string,
      ]),
    );
    for (const [field, value] of Object.entries(v['expect'] as object)) {
      assert.deepEqual(out[field], value, field);
    }
  });

  it('reports micValid null without a key and false with a wrong key', async () => {
    const v = vector('lp-data-1');
    assert.equal(json(await galet(['frame', 'decode', v['phy'] as string]))['micValid'], null);
    const wrong = json(
      await galet(['frame', 'decode', v['phy'] as string, '--nwk-s-key', '00'.repeat(16)]),
    );
    assert.equal(wrong['micValid'], false);
  });

  it('checks a 1.1 uplink MIC with --tx-dr, --tx-ch and --conf-fcnt', async () => {
    const v = vector('brocaar-1.1-up-mic');
    const args = [
      'frame',
      'decode',
      v['phy'] as string,
      '--s-nwk-s-int-key',
      v['sNwkSIntKey'] as string,
      '--f-nwk-s-int-key',
      v['fNwkSIntKey'] as string,
      '--tx-dr',
      String(v['txDr']),
      '--tx-ch',
      String(v['txCh']),
      '--conf-fcnt',
      String(v['confFCnt']),
    ];
    assert.equal(json(await galet(args))['micValid'], true);
    args[8] = '4'; // another TxDr changes the B1 block
    assert.equal(json(await galet(args))['micValid'], false);
  });

  it('decrypts a JoinAccept with --app-key', async () => {
    const v = vector('brocaar-joinaccept');
    const out = json(
      await galet(['frame', 'decode', v['phy'] as string, '--app-key', v['appKey'] as string]),
    );
    for (const [field, value] of Object.entries(v['expect'] as object)) {
      assert.deepEqual(out[field], value, field);
    }
  });

  it('lists FPort-0 MAC commands once decrypted', async () => {
    const v = vector('brocaar-data-fport0');
    const out = json(
      await galet(['frame', 'decode', v['phy'] as string, '--nwk-s-key', v['nwkSKey'] as string]),
    );
    assert.deepEqual(
      (out['macCommands'] as Array<{ cid: string }>).map((c) => c.cid),
      ['LinkCheckReq', 'LinkADRAns'],
    );
  });

  it('decodes NDJSON in batch mode, in order, one output line per input line', async () => {
    const data = vector('lp-data-1');
    const join = vector('lp-joinreq-1');
    const lines = [
      JSON.stringify({ phy: data['phy'], nwkSKey: data['nwkSKey'], appSKey: data['appSKey'] }),
      JSON.stringify({ phy: '40f17dbe' }),
      'not json',
      JSON.stringify({ phy: join['phy'], appKey: join['appKey'] }),
      JSON.stringify({ phy: data['phy'], nwkSKey: 'abc' }),
    ];
    const run = await galet(['frame', 'decode', '--batch'], `${lines.join('\n')}\n`);
    assert.equal(run.status, 0, run.stderr);
    const out = run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(out.length, lines.length);
    assert.equal(out[0]!['frmPayload'], '74657374');
    assert.equal(out[0]!['micValid'], true);
    assert.deepEqual((out[1]!['error'] as { code: string }).code, 'FRAME_TOO_SHORT');
    assert.deepEqual((out[2]!['error'] as { code: string }).code, 'INVALID_INPUT');
    assert.equal(out[3]!['devNonce'], 35076);
    assert.equal(out[3]!['micValid'], true);
    assert.deepEqual((out[4]!['error'] as { code: string }).code, 'INVALID_HEX');
  });

  it('derives 1.0 and 1.1 session keys and join server keys', async () => {
    const k10 = vector('lp-keys-1.0');
    assert.deepEqual(
      json(
        await galet([
          'keys',
          'derive',
          '--lorawan',
          '1.0',
          '--app-key',
          k10['appKey'] as string,
          '--join-nonce',
          String(k10['joinNonce']),
          '--net-id',
          k10['netId'] as string,
          '--dev-nonce',
          String(k10['devNonce']),
        ]),
      ),
      k10['expect'],
    );
    const k11 = vector('lp-keys-1.1');
    assert.deepEqual(
      json(
        await galet([
          'keys',
          'derive',
          '--lorawan',
          '1.1',
          '--nwk-key',
          k11['nwkKey'] as string,
          '--app-key',
          k11['appKey'] as string,
          '--join-nonce',
          String(k11['joinNonce']),
          '--join-eui',
          k11['joinEui'] as string,
          '--dev-nonce',
          String(k11['devNonce']),
        ]),
      ),
      k11['expect'],
    );
    const js = vector('lp-jskeys');
    assert.deepEqual(
      json(
        await galet([
          'keys',
          'js',
          '--nwk-key',
          js['nwkKey'] as string,
          '--dev-eui',
          js['devEui'] as string,
        ]),
      ),
      js['expect'],
    );
  });

  it('wraps and unwraps a key, and refuses an altered envelope', async () => {
    const v = vector('rfc3394-4.1');
    const kek = v['kek'] as string;
    const wrapped = json(await galet(['keys', 'wrap', '--kek', kek, '--key', v['key'] as string]));
    assert.deepEqual(wrapped, v['expect']);
    const unwrapped = json(
      await galet(['keys', 'unwrap', '--kek', kek, '--wrapped', wrapped['wrapped'] as string]),
    );
    assert.equal(unwrapped['key'], v['key']);
    const tampered = `${(wrapped['wrapped'] as string).slice(0, -1)}0`;
    assertOneLineError(
      await galet(['keys', 'unwrap', '--kek', kek, '--wrapped', tampered]),
      /^galet: key unwrap failed its integrity check/,
    );
  });

  it('prints LoRa time on air in milliseconds', async () => {
    const sf12 = await galet(['airtime', '--sf', '12', '--bw', '125', '--payload', '51']);
    assert.equal(sf12.stdout.trim(), '2465.792');
    const thirteenBytesSf7 = ['airtime', '--sf', '7', '--bw', '125', '--payload', '13'];
    const sf7 = await galet([...thirteenBytesSf7, '--cr', '4/5']);
    assert.equal(sf7.stdout.trim(), '46.336');
    const noCrc = await galet([...thirteenBytesSf7, '--no-crc', '--json']);
    assert.ok((json(noCrc)['airtimeMs'] as number) < 46.336);
  });

  it('rejects bad input with one line on stderr and no stack trace', async () => {
    assertOneLineError(
      await galet(['frame', 'decode', '40f17dbe4']),
      /^galet: .*odd number of hex digits/,
    );
    assertOneLineError(
      await galet(['frame', 'decode', '40f17dbe490002']),
      /^galet: frame too short/,
    );
    assertOneLineError(
      await galet(['frame', 'decode', '40f17dbe4900020001954378762b11ff0d', '--nwk-s-key', '0102']),
      /^galet: --nwk-s-key must be 16 bytes/,
    );
    assertOneLineError(await galet(['frame', 'decode', 'zz']), /^galet: .*not a hex digit/);
    assertOneLineError(
      await galet(['keys', 'derive', '--lorawan', '1.2', '--join-nonce', '1', '--dev-nonce', '1']),
      /^galet: --lorawan must be 1.0 or 1.1/,
    );
    assertOneLineError(
      await galet(['airtime', '--sf', '13', '--bw', '125', '--payload', '10']),
      /^galet: spreading factor/,
    );
  });
});
