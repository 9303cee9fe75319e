// `importDeviceRepository`: a TTN Device Repository checkout read, mapped and its codec
// examples run through a real CodecProcess, on the fixture repository and on broken copies.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { jsonDifferences } from '../../../src/application/codecs/device-repository/index.js';
import {
  CodecProcess,
  DeviceRepositoryError,
  type ImportReport,
  importDeviceRepository,
} from '../../../src/application/codecs/index.js';

export const FIXTURE = fileURLToPath(new URL('../../fixtures/device-repository', import.meta.url));

const GOOD_VENDORS = [
  'acquaflux',
  'airlume',
  'glacis',
  'lumaris',
  'parcsens',
  'hydrolis',
  'trakko',
];

let host: CodecProcess;
before(async () => {
  // Generous: the machine may be loaded; the runaway example costs one time cap.
  host = await CodecProcess.start({ timeoutMs: 1000 });
});
after(() => host.close());

function failures(report: ImportReport): [string, string, string][] {
  return report.failed.map((f) => [f.codec, f.description, f.code]);
}

describe('importing the fixture repository', () => {
  let report: ImportReport;
  before(async () => {
    report = await importDeviceRepository(FIXTURE, { loader: host });
  });

  it('counts codecs, examples and passes exactly', () => {
    assert.equal(report.vendors, 9);
    assert.equal(report.devices, 16);
    assert.equal(report.catalogue.length, 20);
    assert.equal(report.codecs, 15);
    assert.equal(report.examples, 150);
    assert.equal(report.passed, 135);
    assert.deepEqual(
      report.codecSummaries.map((s) => [s.codec, s.examples, s.passed]),
      [
        ['acquaflux/wm-daily-codec', 19, 19],
        ['airlume/aqs-300-codec', 18, 18],
        ['glacis/rf-11-codec', 18, 18],
        ['lumaris/slc-n7-codec', 21, 21],
        ['parcsens/ps-mag-codec', 17, 17],
        ['hydrolis/hl-r-codec', 17, 17],
        ['trakko/pebble-codec', 17, 17],
        ['brokenco/thrower-codec', 2, 1],
        ['brokenco/spinner-codec', 3, 2],
        ['brokenco/syntax-codec', 2, 0],
        ['brokenco/mismatch-codec', 14, 5],
        ['brokenco/ghost-codec', 1, 0],
        ['brokenco/sneaky-codec', 1, 0],
        ['brokenco/broken-codec', 0, 0],
        ['brokenco/absent-codec', 0, 0],
      ],
    );
  });

  it('lists every failure with its reason, repository problems first', () => {
    assert.deepEqual(failures(report), [
      ['vendor/index.yaml', 'definition', 'DEFINITION_INVALID'],
      ['vendor/brokenco/bad-device.yaml', 'definition', 'YAML_INVALID'],
      ['vendor/brokenco/shapeless.yaml', 'definition', 'DEFINITION_INVALID'],
      ['vendor/brokenco/vanished.yaml', 'definition', 'FILE_MISSING'],
      ['brokenco/thrower-codec', 'Unit lookup on FPort 2 throws', 'CODEC_FAILED'],
      ['brokenco/spinner-codec', 'Runaway loop on 0xff', 'CODEC_FAILED'],
      ['brokenco/syntax-codec', 'First value', 'CODEC_LOAD_FAILED'],
      ['brokenco/syntax-codec', 'Second value', 'CODEC_LOAD_FAILED'],
      ['brokenco/mismatch-codec', 'Wrong value (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Missing warning (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Expects errors, gets data (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Extra key expected (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Wrong normalized output (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Bytes that are not bytes (wrong shape)', 'EXAMPLE_INVALID'],
      ['brokenco/mismatch-codec', 'No input (wrong shape)', 'EXAMPLE_INVALID'],
      ['brokenco/mismatch-codec', 'Wrong bytes (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/mismatch-codec', 'Wrong FPort (deliberate)', 'OUTPUT_MISMATCH'],
      ['brokenco/ghost-codec', 'Any frame', 'FILE_MISSING'],
      ['brokenco/sneaky-codec', "Reads a file outside the vendor's folder", 'PATH_OUTSIDE_VENDOR'],
      ['brokenco/broken-codec', 'codec definition', 'YAML_INVALID'],
      ['brokenco/absent-codec', 'codec definition', 'FILE_MISSING'],
    ]);
    const reasons = report.failed.map((f) => f.reason);
    assert.deepEqual(reasons.slice(8, 17), [
      'data.temperature: expected 21.6, got 21.5',
      'warnings: expected [], got ["hot"]',
      'errors: expected ["unknown FPort 1"], the codec returned a result',
      'data.humidity: expected 40, got nothing',
      'normalizedOutput.data[0].air.temperature: expected 20, got 21.5',
      'the example has a wrong shape: input.bytes[1] is not a byte: 300',
      'the example has a wrong shape: input is not a map',
      'bytes[0]: expected 11, got 10',
      'fPort: expected 3, got 2',
    ]);
    assert.equal(reasons[0], 'vendor/index.yaml: vendors[9] is not a valid id: "../escape"');
    assert.match(reasons[1]!, /^vendor\/brokenco\/bad-device\.yaml: .* at line 5, column 1$/);
    assert.equal(reasons[3], 'vendor/brokenco/vanished.yaml: file not found');
    assert.match(reasons[4]!, /^CODEC_THREW: TypeError: .*\(at codec\.js:8:\d+\)$/);
    assert.equal(reasons[5], 'CODEC_TIMEOUT: the codec ran longer than 1000 ms and was stopped');
    assert.match(
      reasons[6]!,
      /^vendor\/brokenco\/syntax\.js does not load: CODEC_COMPILE_ERROR: .*SyntaxError/,
    );
    assert.equal(reasons[17], 'vendor/brokenco/ghost.js: file not found');
    assert.equal(
      reasons[18],
      'fileName "../../etc/passwd" leaves the vendor\'s folder vendor/brokenco',
    );
    assert.equal(reasons[20], 'vendor/brokenco/absent-codec.yaml: file not found');
  });

  it('maps every device profile to its codec', () => {
    const entry = (device: string, region: string) =>
      report.catalogue.find((e) => e.device === device && e.region === region);
    assert.deepEqual(entry('wmd-2', 'AS923'), {
      vendor: 'acquaflux',
      device: 'wmd-2',
      name: 'WMD-2 Water Meter Module',
      firmwareVersion: '2.1',
      hardwareVersions: ['2.0'],
      region: 'AS923',
      profile: 'wmd-2-profile-as923',
      lorawanCertified: false,
      codec: 'acquaflux/wm-daily-codec',
    });
    assert.equal(entry('pebble', 'US902-928')?.codec, null);
    assert.equal(
      report.catalogue.filter((e) => e.codec === 'acquaflux/wm-daily-codec').length,
      4,
      'two devices, three firmware versions, two regions, one codec',
    );
    assert.deepEqual(report.codecSummaries[0]!.files, {
      uplinkDecoder: 'vendor/acquaflux/wm-daily.js',
      downlinkEncoder: 'vendor/acquaflux/wm-daily.js',
      downlinkDecoder: 'vendor/acquaflux/wm-daily.js',
    });
  });

  it('passes every example of the vendor-style codecs, one vendor at a time', async () => {
    for (const vendor of GOOD_VENDORS) {
      const progress: number[] = [];
      const only = await importDeviceRepository(FIXTURE, {
        loader: host,
        vendor,
        onProgress: (p) => progress.push(p.codecsDone),
      });
      assert.equal(only.vendors, 1);
      assert.equal(only.codecs, 1, vendor);
      assert.ok(only.examples >= 17, vendor);
      assert.equal(only.passed, only.examples, JSON.stringify(only.failed));
      assert.deepEqual(only.failed, []);
      assert.deepEqual(progress, [1]);
    }
  });
});

describe('a broken repository', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'galet-devrepo-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A one-vendor repository whose codec definition and files are given. */
  function repository(name: string, files: Record<string, string>): string {
    const root = join(dir, name);
    mkdirSync(join(root, 'vendor', 'v'), { recursive: true });
    writeFileSync(join(root, 'vendor/index.yaml'), 'vendors:\n  - id: v\n');
    writeFileSync(join(root, 'vendor/v/index.yaml'), 'endDevices: [d]\n');
    writeFileSync(
      join(root, 'vendor/v/d.yaml'),
      'firmwareVersions:\n  - version: "1"\n    profiles:\n      EU863-870: {id: p, codec: c}\n',
    );
    for (const [path, text] of Object.entries(files))
      writeFileSync(join(root, 'vendor/v', path), text);
    return root;
  }

  function codecYaml(
    fileName: string,
    example = 'input: {fPort: 1, bytes: [1]}\n      output: {data: {value: 1}}',
  ): string {
    return `uplinkDecoder:\n  fileName: ${JSON.stringify(fileName)}\n  examples:\n    - description: one\n      ${example}\n`;
  }

  const ECHO = 'function decodeUplink(input) { return { data: { value: input.bytes[0] } }; }';

  it('refuses a path that is not a checkout, and an unknown vendor', async () => {
    for (const path of [join(dir, 'nowhere'), `${FIXTURE}/vendor/index.yaml`, dir]) {
      await assert.rejects(
        importDeviceRepository(path, { loader: host }),
        (error) => error instanceof DeviceRepositoryError && error.code === 'NOT_A_REPOSITORY',
      );
    }
    await assert.rejects(
      importDeviceRepository(FIXTURE, { loader: host, vendor: 'nobody' }),
      (error) => error instanceof DeviceRepositoryError && error.code === 'UNKNOWN_VENDOR',
    );
  });

  it('passes a minimal good repository', async () => {
    const report = await importDeviceRepository(
      repository('good', { 'c.yaml': codecYaml('c.js'), 'c.js': ECHO }),
      { loader: host },
    );
    assert.deepEqual([report.codecs, report.examples, report.passed, report.failed], [1, 1, 1, []]);
  });

  it('keeps codec files inside the vendor folder: absolute names and links out', async () => {
    const outside = join(dir, 'outside.js');
    writeFileSync(outside, ECHO);
    const absolute = repository('absolute', { 'c.yaml': codecYaml(outside) });
    const linked = repository('linked', { 'c.yaml': codecYaml('c.js') });
    symlinkSync(outside, join(linked, 'vendor/v/c.js'));
    const sideways = repository('sideways', { 'c.yaml': codecYaml('../other/c.js') });
    mkdirSync(join(sideways, 'vendor/other'));
    writeFileSync(join(sideways, 'vendor/other/c.js'), ECHO);
    for (const root of [absolute, linked, sideways]) {
      const report = await importDeviceRepository(root, { loader: host });
      assert.deepEqual(failures(report), [['v/c', 'one', 'PATH_OUTSIDE_VENDOR']], root);
      assert.equal(report.passed, 0);
    }
  });

  it('does not follow a vendor folder linked from outside the checkout', async () => {
    const elsewhere = repository('elsewhere', { 'c.yaml': codecYaml('c.js'), 'c.js': ECHO });
    const root = join(dir, 'linked-vendor');
    mkdirSync(join(root, 'vendor'), { recursive: true });
    writeFileSync(join(root, 'vendor/index.yaml'), 'vendors:\n  - id: v\n');
    symlinkSync(join(elsewhere, 'vendor/v'), join(root, 'vendor/v'));
    const report = await importDeviceRepository(root, { loader: host });
    assert.deepEqual(failures(report), [
      ['vendor/v/index.yaml', 'definition', 'PATH_OUTSIDE_VENDOR'],
    ]);
    assert.equal(report.failed[0]!.reason, 'vendor/v/index.yaml is a link out of the repository');
  });

  it('reports YAML that is not JSON, alias bombs and wrong shapes', async () => {
    const cases: [string, string, string, RegExp][] = [
      [
        'nan',
        'uplinkDecoder: {fileName: c.js, examples: [{input: .nan}]}\n',
        'YAML_INVALID',
        /uplinkDecoder\.examples\[0\]\.input is NaN/,
      ],
      [
        'aliases',
        `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
        'YAML_INVALID',
        /alias/i,
      ],
      [
        'no-file-name',
        'uplinkDecoder: {examples: []}\n',
        'DEFINITION_INVALID',
        /^uplinkDecoder\.fileName is not a file name$/,
      ],
      [
        'examples-map',
        'uplinkDecoder: {fileName: c.js, examples: {a: 1}}\n',
        'DEFINITION_INVALID',
        /^uplinkDecoder\.examples is not a list$/,
      ],
      ['list', '- 1\n- 2\n', 'DEFINITION_INVALID', /^the definition is not a map$/],
    ];
    for (const [name, yaml, code, reason] of cases) {
      const report = await importDeviceRepository(
        repository(name, { 'c.yaml': yaml, 'c.js': ECHO }),
        { loader: host },
      );
      assert.equal(report.failed.length, 1, `${name}: ${JSON.stringify(report.failed)}`);
      assert.equal(report.failed[0]!.code, code, name);
      assert.match(report.failed[0]!.reason, reason, name);
    }
  });

  it('reports wrong-shaped examples one by one and runs the others', async () => {
    const examples = [
      'input: {fPort: 1, bytes: [1]}\n      output: {data: {value: 1}}',
      'input: {fPort: 300, bytes: [1]}\n      output: {data: {}}',
      'input: {fPort: 1, bytes: "01"}\n      output: {data: {}}',
      'input: {fPort: 1, bytes: [1], recvTime: yesterday}\n      output: {data: {}}',
      'input: {fPort: 1, bytes: [1]}\n      output: {data: {}, errors: oops}',
      'input: {fPort: 1, bytes: [1]}',
    ];
    const yaml = `uplinkDecoder:\n  fileName: c.js\n  examples:\n${examples.map((e) => `    - ${e.replaceAll('\n      ', '\n      ')}\n`).join('')}`;
    const report = await importDeviceRepository(
      repository('shapes', { 'c.yaml': yaml, 'c.js': ECHO }),
      {
        loader: host,
      },
    );
    assert.equal(report.examples, 6);
    assert.equal(report.passed, 1);
    assert.deepEqual(
      report.failed.map((f) => [f.description, f.reason]),
      [
        [
          'uplinkDecoder example 2',
          'the example has a wrong shape: input.fPort is not an FPort (0-255): 300',
        ],
        [
          'uplinkDecoder example 3',
          'the example has a wrong shape: input.bytes is not a list of bytes: "01"',
        ],
        [
          'uplinkDecoder example 4',
          'the example has a wrong shape: input.recvTime is not an ISO-8601 time: "yesterday"',
        ],
        [
          'uplinkDecoder example 5',
          'the example has a wrong shape: output.errors is not a list: "oops"',
        ],
        ['uplinkDecoder example 6', 'the example has a wrong shape: output is not a map'],
      ],
    );
  });

  it('reports codecs whose top-level code runs away, and goes on', async () => {
    const report = await importDeviceRepository(
      repository('top-level', {
        'c.yaml': `${codecYaml('c.js')}downlinkEncoder:\n  fileName: e.js\n  examples:\n    - input: {data: {v: 3}}\n      output: {bytes: [3], fPort: 9}\n`,
        'c.js': `for (;;) {}\n${ECHO}`,
        'e.js': 'function encodeDownlink(input) { return { bytes: [input.data.v], fPort: 9 }; }',
      }),
      { loader: host },
    );
    assert.deepEqual(failures(report), [['v/c', 'one', 'CODEC_LOAD_FAILED']]);
    assert.match(report.failed[0]!.reason, /^vendor\/v\/c\.js does not load: CODEC_TIMEOUT: /);
    assert.equal(report.passed, 1, 'the encoder in its own file still runs');
  });

  it('reports a codec that makes the sandbox abort, and the next codec still runs', async () => {
    // A Map grown past the memory cap makes V8 abort the codec process (isolated-vm #527).
    const bombHost = await CodecProcess.start({ timeoutMs: 2000, memoryLimitMiB: 8 });
    try {
      const root = repository('bomb', {
        'c.yaml': codecYaml('c.js'),
        'c.js':
          'function decodeUplink() { const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]); }',
      });
      const report = await importDeviceRepository(root, { loader: bombHost });
      assert.deepEqual(failures(report), [['v/c', 'one', 'CODEC_FAILED']]);
      assert.match(report.failed[0]!.reason, /^CODEC_MEMORY_LIMIT: /);
      assert.equal(bombHost.stats().restarts, 1);
      const good = await importDeviceRepository(
        repository('after-bomb', { 'c.yaml': codecYaml('c.js'), 'c.js': ECHO }),
        { loader: bombHost },
      );
      assert.equal(good.passed, 1);
    } finally {
      await bombHost.close();
    }
  });

  it('copes with a vendor index that lists nothing usable', async () => {
    const root = join(dir, 'empty-index');
    mkdirSync(join(root, 'vendor'), { recursive: true });
    writeFileSync(join(root, 'vendor/index.yaml'), 'vendors: 3\n');
    const report = await importDeviceRepository(root, { loader: host });
    assert.deepEqual(failures(report), [['vendor/index.yaml', 'definition', 'DEFINITION_INVALID']]);
    assert.equal(report.codecs, 0);
  });
});

describe('comparing outputs', () => {
  it('is exact on numbers after a JSON round trip, and ignores key order', () => {
    assert.deepEqual(jsonDifferences({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1.0 }, 'data'), []);
    assert.deepEqual(jsonDifferences({ t: 0 }, { t: -0 }, 'data'), []);
    assert.deepEqual(jsonDifferences({ t: 0.3 }, { t: 0.1 + 0.2 }, 'data'), [
      'data.t: expected 0.3, got 0.30000000000000004',
    ]);
    assert.deepEqual(
      jsonDifferences(
        { d: '2026-01-01T00:00:00.000Z' },
        { d: new Date(Date.UTC(2026, 0, 1)) },
        'data',
      ),
      [],
    );
    assert.deepEqual(jsonDifferences({ a: 1 }, { a: 1, b: undefined }, 'data'), []);
  });

  it('names each difference by its path, at most a few', () => {
    assert.deepEqual(jsonDifferences([1, { x: 'a' }], [1, { x: 'b' }, 3], 'data'), [
      'data: expected 2 items, got 3',
      'data[1].x: expected "a", got "b"',
    ]);
    assert.deepEqual(jsonDifferences({ a: 1, b: 2, c: 3, d: 4 }, {}, 'data', 2), [
      'data.a: expected 1, got nothing',
      'data.b: expected 2, got nothing',
    ]);
    assert.deepEqual(jsonDifferences({}, { z: null }, 'data'), ['data.z: unexpected null']);
    assert.deepEqual(jsonDifferences({ n: null }, { n: {} }, 'data'), [
      'data.n: expected null, got {}',
    ]);
  });
});
