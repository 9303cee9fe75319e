// `galet codec run`: the codec test bench on the command line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { vendorCodecPath } from './helpers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function galet(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function json(args: string[]): unknown {
  const run = galet(args);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

describe('galet codec run', () => {
  const sensor = vendorCodecPath('th-sensor-ttn.js');

  it('prints the result object of a decode', () => {
    assert.deepEqual(
      json(['codec', 'run', '--file', sensor, '--fport', '1', '--hex', '010ce409297b00']),
      {
        data: {
          version: 1,
          batteryVoltage: 3.3,
          temperature: 23.45,
          humidity: 61.5,
          buttonPressed: false,
          alarms: { high: false, low: false },
        },
        warnings: [],
        errors: [],
      },
    );
  });

  it('prints the codec’s own errors, and encodes downlinks', () => {
    assert.deepEqual(json(['codec', 'run', '--file', sensor, '--fport', '7', '--hex', '00']), {
      warnings: [],
      errors: ['unknown fPort 7'],
    });
    assert.deepEqual(json(['codec', 'run', '--file', sensor, '--encode', '{"led":true}']), {
      bytes: '0301',
      fPort: 10,
      warnings: [],
      errors: [],
    });
  });

  it('measures the rate with --repeat, single calls or batches', () => {
    for (const extra of [[], ['--batch', '100']]) {
      const out = json([
        'codec',
        'run',
        '--file',
        sensor,
        '--fport',
        '1',
        '--hex',
        '010ce409297b00',
        '--repeat',
        '2000',
        ...extra,
      ]) as { runs: number; perSecond: number };
      assert.deepEqual(Object.keys(out), ['runs', 'perSecond']);
      assert.equal(out.runs, 2000);
      assert.ok(Number.isInteger(out.perSecond) && out.perSecond > 0);
    }
  });

  it('reports a runaway codec and a broken source in one line each', () => {
    const dir = mkdtempSync(join(tmpdir(), 'galet-codec-'));
    const loop = join(dir, 'loop.js');
    writeFileSync(loop, 'function decodeUplink() { while (true) {} }');
    const broken = join(dir, 'broken.js');
    writeFileSync(broken, 'function decodeUplink( {');
    for (const [file, pattern] of [
      [loop, /^galet: the codec ran longer than 30 ms and was stopped \(CODEC_TIMEOUT\)$/],
      [
        broken,
        /^galet: the codec does not compile: SyntaxError: .*\[codec\.js:\d+:\d+\] \(CODEC_COMPILE_ERROR\)$/,
      ],
    ] as const) {
      const run = galet([
        'codec',
        'run',
        '--file',
        file,
        '--fport',
        '1',
        '--hex',
        '00',
        '--timeout-ms',
        '30',
      ]);
      assert.equal(run.status, 1);
      assert.equal(run.stdout, '');
      assert.match(run.stderr.trim(), pattern);
    }
  });
});
