// `galet codecs import`: the Device Repository importer on the command line, as a child process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const FIXTURE = 'test/fixtures/device-repository';

function galet(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('galet codecs import', () => {
  const dir = mkdtempSync(join(tmpdir(), 'galet-codecs-import-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the report as JSON, exits 1 on failures and writes the catalogue', () => {
    const catalogue = join(dir, 'catalogue.json');
    const run = galet([
      'codecs',
      'import',
      FIXTURE,
      '--json',
      '--timeout-ms',
      '1000',
      '--catalogue',
      catalogue,
    ]);
    assert.equal(run.status, 1, run.stderr);
    const report = JSON.parse(run.stdout) as {
      codecs: number;
      examples: number;
      passed: number;
      failed: { codec: string; description: string; reason: string }[];
    };
    assert.deepEqual(Object.keys(report), ['codecs', 'examples', 'passed', 'failed']);
    assert.deepEqual([report.codecs, report.examples, report.passed], [15, 150, 135]);
    assert.equal(report.failed.length, 21);
    for (const failure of report.failed) {
      assert.deepEqual(Object.keys(failure), ['codec', 'description', 'reason']);
    }
    assert.deepEqual(report.failed[8], {
      codec: 'brokenco/mismatch-codec',
      description: 'Wrong value (deliberate)',
      reason: 'data.temperature: expected 21.6, got 21.5',
    });
    assert.match(run.stderr, /^galet: codecs 15\/15, examples 150, passed 135, failures 21$/m);

    const written = JSON.parse(readFileSync(catalogue, 'utf8')) as {
      devices: { device: string; region: string; codec: string | null }[];
      codecs: Record<
        string,
        { files: Record<string, string>; examples: number; passed: number; failures: number }
      >;
    };
    assert.equal(written.devices.length, 20);
    assert.deepEqual(
      written.devices.find((d) => d.device === 'rf-11'),
      {
        vendor: 'glacis',
        device: 'rf-11',
        name: 'RF-11 Road Weather Station',
        firmwareVersion: '3.0',
        hardwareVersions: [],
        region: 'EU863-870',
        profile: 'rf-11-profile',
        lorawanCertified: false,
        codec: 'glacis/rf-11-codec',
      },
    );
    assert.deepEqual(written.codecs['brokenco/mismatch-codec'], {
      files: {
        uplinkDecoder: 'vendor/brokenco/mismatch.js',
        downlinkEncoder: 'vendor/brokenco/mismatch.js',
        downlinkDecoder: 'vendor/brokenco/mismatch.js',
      },
      examples: 14,
      passed: 5,
      failures: 9,
    });
  });

  it('prints a human summary and exits 0 when every example passes', () => {
    const run = galet(['codecs', 'import', FIXTURE, '--vendor', 'trakko']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(
      run.stdout,
      `Device Repository ${FIXTURE}: 1 vendors, 1 devices, 2 profiles, 1 codecs\n` +
        'examples: 17, passed: 17, failed: 0\nevery example passed\n',
    );
  });

  it('exits 2 on usage errors, with one line on stderr and nothing on stdout', () => {
    for (const [args, message] of [
      [[FIXTURE, '--vendor', 'nobody'], /^galet: vendor\/index\.yaml lists no vendor nobody$/],
      [[join(dir, 'nowhere')], /^galet: .*nowhere is not a folder$/],
      [
        [FIXTURE, '--timeout-ms', 'soon'],
        /^galet: --timeout-ms must be an integer from 1 to 60000, got soon$/,
      ],
      [[FIXTURE, '--bogus'], /^error: unknown option '--bogus'/],
    ] as const) {
      const run = galet(['codecs', 'import', ...args]);
      assert.equal(run.status, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr.trim(), message);
    }
  });
});
