// The Device Repository importer judges examples the way TTN's own validation does
// (bin/validate.js with tools/runscript in lorawan-devices): what that harness accepts, the
// importer accepts; what it rejects, the importer rejects. Each case here is one difference a
// rebuilt sample of the real repository showed (docs/codecs.md, "A real Device Repository
// sample"); the codecs are small vendor-style ones written for these tests.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CodecEngine,
  CodecProcess,
  type ImportReport,
  importDeviceRepository,
} from '../../../src/application/codecs/index.js';
import { assertEncoded, assertFailure } from './helpers.js';

let host: CodecProcess;
let dir: string;
before(async () => {
  host = await CodecProcess.start({ timeoutMs: 1000 });
  dir = mkdtempSync(join(tmpdir(), 'galet-devrepo-harness-'));
});
after(async () => {
  await host.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A one-vendor, one-device repository with this codec definition and these files. */
async function importCodec(
  name: string,
  definition: string,
  files: Record<string, string>,
): Promise<ImportReport> {
  const root = join(dir, name);
  mkdirSync(join(root, 'vendor', 'rivora'), { recursive: true });
  writeFileSync(join(root, 'vendor/index.yaml'), 'vendors:\n  - id: rivora\n    name: Rivora\n');
  writeFileSync(join(root, 'vendor/rivora/index.yaml'), 'endDevices:\n  - vx-2\n');
  writeFileSync(
    join(root, 'vendor/rivora/vx-2.yaml'),
    'name: VX-2\nfirmwareVersions:\n  - version: "2.1"\n    profiles:\n      EU863-870:\n        id: vx-2-eu868\n        codec: vx-2-codec\n',
  );
  writeFileSync(join(root, 'vendor/rivora/vx-2-codec.yaml'), definition);
  for (const [file, text] of Object.entries(files)) {
    writeFileSync(join(root, 'vendor/rivora', file), text);
  }
  return importDeviceRepository(root, { loader: host });
}

function verdicts(report: ImportReport): string[] {
  return report.failed.map((failure) => `${failure.description}: ${failure.reason}`);
}

describe('encoder examples without an FPort', () => {
  // A valve whose encoder, like many vendors' recent ones, returns only the bytes; it refuses to
  // run when handed an FPort, so a port leaking into its input shows up as a failure.
  const VALVE = `
    function encodeDownlink(input) {
      if (input.fPort !== undefined) return { errors: ['unexpected fPort ' + input.fPort] };
      var opening = input.data.opening;
      if (typeof opening !== 'number' || opening < 0 || opening > 100) {
        return { errors: ['opening must be 0-100'] };
      }
      return { bytes: [0x31, opening] };
    }`;

  it('compares the bytes of an encoder that returns no FPort when the example gives none', async () => {
    const report = await importCodec(
      'portless',
      `downlinkEncoder:
  fileName: vx-2.js
  examples:
    - description: Half open
      input:
        data: {opening: 50}
      output:
        bytes: [0x31, 0x32]
    - description: Closed, wrong bytes on purpose
      input:
        data: {opening: 0}
      output:
        bytes: [0x31, 0x01]
    - description: Out of range
      input:
        data: {opening: 120}
      output:
        errors: [opening must be 0-100]
`,
      { 'vx-2.js': VALVE },
    );
    assert.deepEqual([report.examples, report.passed], [3, 2]);
    assert.deepEqual(verdicts(report), [
      'Closed, wrong bytes on purpose: bytes[1]: expected 1, got 0',
    ]);
  });

  it('still fails an example that expects an FPort the encoder does not return', async () => {
    const report = await importCodec(
      'port-expected',
      `downlinkEncoder:
  fileName: vx-2.js
  examples:
    - description: Half open on port 5
      input:
        data: {opening: 50}
      output:
        bytes: [0x31, 0x32]
        fPort: 5
`,
      { 'vx-2.js': VALVE },
    );
    assert.equal(report.passed, 0);
    assert.deepEqual(verdicts(report), [
      'Half open on port 5: CODEC_INVALID_RESULT: the codec returned no fPort and the request gave none',
    ]);
  });
});

describe('normalized output', () => {
  // TTN's harness turns a single normalized measurement into a list of one before comparing it
  // with normalizedOutput, which the repository always writes as a list.
  const GAUGE = `
    function decodeUplink(input) {
      return { data: { level: (input.bytes[0] << 8 | input.bytes[1]) / 10 } };
    }
    function normalizeUplink(input) {
      return { data: { water: { level: input.data.level / 100 } } };
    }`;

  it('compares a single normalized measurement as a list of one', async () => {
    const report = await importCodec(
      'one-measurement',
      `uplinkDecoder:
  fileName: vx-2.js
  examples:
    - description: Level 1.25 m
      input: {fPort: 1, bytes: [0x04, 0xe2]}
      output:
        data: {level: 125}
      normalizedOutput:
        data:
          - water: {level: 1.25}
    - description: Written as a bare measurement, which the harness rejects too
      input: {fPort: 1, bytes: [0x04, 0xe2]}
      output:
        data: {level: 125}
      normalizedOutput:
        data:
          water: {level: 1.25}
`,
      { 'vx-2.js': GAUGE },
    );
    assert.deepEqual([report.examples, report.passed], [2, 1]);
    assert.equal(report.failed.length, 1);
    assert.match(
      report.failed[0]!.reason,
      /^normalizedOutput\.data: expected \{"water":\{"level":1\.25\}\}, got \[\{"water"/,
    );
  });
});

describe('properties a codec leaves undefined', () => {
  // TTN's harness exports an undefined property as null, so the repository's examples list it
  // as null; the sandbox's JSON drops it.
  const PROBE = `
    var MODES = { 1: 'eco', 2: 'boost' };
    function decodeUplink(input) {
      var data = { temperature: input.bytes[1] / 2, mode: MODES[input.bytes[0]] };
      if (input.bytes[0] === 9) data.flag = null;
      return { data: data };
    }`;

  it('matches an expected null with a property left undefined, and nothing else', async () => {
    const report = await importCodec(
      'undefined-property',
      `uplinkDecoder:
  fileName: vx-2.js
  examples:
    - description: Unknown mode
      input: {fPort: 1, bytes: [7, 41]}
      output:
        data: {temperature: 20.5, mode: null}
    - description: Known mode
      input: {fPort: 1, bytes: [2, 41]}
      output:
        data: {temperature: 20.5, mode: boost}
    - description: A value is not null
      input: {fPort: 1, bytes: [7, 41]}
      output:
        data: {temperature: 20.5, mode: eco}
    - description: An explicit null the example leaves out
      input: {fPort: 1, bytes: [9, 41]}
      output:
        data: {temperature: 20.5, mode: null}
`,
      { 'vx-2.js': PROBE },
    );
    assert.deepEqual([report.examples, report.passed], [4, 2]);
    assert.deepEqual(verdicts(report), [
      'A value is not null: data.mode: expected "eco", got nothing',
      'An explicit null the example leaves out: data.flag: unexpected null',
    ]);
  });
});

describe('the default FPort of an encode', () => {
  const engine = new CodecEngine();
  after(() => engine.dispose());
  const codec = engine.load(
    'function encodeDownlink(input) { return input.data.own ? { bytes: [input.fPort === undefined ? 0 : input.fPort], fPort: 8 } : { bytes: [input.fPort === undefined ? 0 : input.fPort] }; }',
  );

  it('is the FPort of a result that names none, and the codec never sees it', () => {
    assertEncoded(codec.encodeDownlink({ data: {}, defaultFPort: 3 }), '00', 3);
  });

  it('gives way to the codec’s FPort and to the request’s', () => {
    assertEncoded(codec.encodeDownlink({ data: { own: true }, defaultFPort: 3 }), '00', 8);
    assertEncoded(codec.encodeDownlink({ data: {}, fPort: 6, defaultFPort: 3 }), '06', 6);
  });

  it('must be an application port', () => {
    for (const defaultFPort of [0, 224, 1.5]) {
      assertFailure(
        codec.encodeDownlink({ data: {}, defaultFPort }),
        'CODEC_INVALID_INPUT',
        `defaultFPort ${defaultFPort} is not an integer 1-223`,
      );
    }
  });
});
