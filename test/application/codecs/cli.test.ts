// `galet codec run`: the codec test bench on the command line, run as the built CLI (see
// test/cli/built-cli.ts); the cases are independent and run side by side.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CliRun, galetCli as galet } from '../../cli/run-cli.js';
import { vendorCodecPath } from './helpers.js';

async function json(args: string[]): Promise<unknown> {
  const run = await galet(args);
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

describe('galet codec run', { concurrency: true }, () => {
  const sensor = vendorCodecPath('th-sensor-ttn.js');

  it('prints the result object of a decode', async () => {
    assert.deepEqual(
      await json(['codec', 'run', '--file', sensor, '--fport', '1', '--hex', '010ce409297b00']),
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

  it('prints the codec’s own errors, and encodes downlinks', async () => {
    const [decoded, encoded] = await Promise.all([
      json(['codec', 'run', '--file', sensor, '--fport', '7', '--hex', '00']),
      json(['codec', 'run', '--file', sensor, '--encode', '{"led":true}']),
    ]);
    assert.deepEqual(decoded, { warnings: [], errors: ['unknown fPort 7'] });
    assert.deepEqual(encoded, { bytes: '0301', fPort: 10, warnings: [], errors: [] });
  });

  it('measures the rate with --repeat, single calls or batches', async () => {
    const uplink = ['codec', 'run', '--file', sensor, '--fport', '1', '--hex', '010ce409297b00'];
    const outs = (await Promise.all(
      [[], ['--batch', '100']].map((extra) => json([...uplink, '--repeat', '2000', ...extra])),
    )) as { runs: number; perSecond: number }[];
    for (const out of outs) {
      assert.deepEqual(Object.keys(out), ['runs', 'perSecond']);
      assert.equal(out.runs, 2000);
      assert.ok(Number.isInteger(out.perSecond) && out.perSecond > 0);
    }
  });

  it('reports a runaway codec and a broken source in one line each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'galet-codec-'));
    try {
      const loop = join(dir, 'loop.js');
      writeFileSync(loop, 'function decodeUplink() { while (true) {} }');
      const broken = join(dir, 'broken.js');
      writeFileSync(broken, 'function decodeUplink( {');
      const cases = [
        [loop, /^galet: the codec ran longer than 30 ms and was stopped \(CODEC_TIMEOUT\)$/],
        [
          broken,
          /^galet: the codec does not compile: SyntaxError: .*\[codec\.js:\d+:\d+\] \(CODEC_COMPILE_ERROR\)$/,
        ],
      ] as const;
      const runs: CliRun[] = await Promise.all(
        cases.map(([file]) =>
          galet([
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
          ]),
        ),
      );
      cases.forEach(([, pattern], i) => {
        const run = runs[i]!;
        assert.equal(run.status, 1);
        assert.equal(run.stdout, '');
        assert.match(run.stderr.trim(), pattern);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
