// Property tests (fast-check): random frames, random expectations and random definitions
// through the Device Repository importer's parts never crash it; every run ends in an outcome.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  type CodecExample,
  type ExpectedDecode,
  readCodecDefinition,
} from '../../../src/application/codecs/device-repository/codec-definition.js';
import { RepositoryFileProblem } from '../../../src/application/codecs/device-repository/errors.js';
import { runExample } from '../../../src/application/codecs/device-repository/example-runner.js';
import { RepositoryFiles } from '../../../src/application/codecs/device-repository/repository-files.js';
import {
  CodecProcess,
  type DecodeOutcome,
  type EncodeOutcome,
  type JsonValue,
  type RemoteCodec,
} from '../../../src/application/codecs/index.js';

const VENDORS = fileURLToPath(new URL('../../fixtures/device-repository/vendor/', import.meta.url));

/** Every fixture codec that compiles (syntax.js is there not to). */
const CODEC_FILES = readdirSync(VENDORS, { recursive: true, encoding: 'utf8' })
  .filter((path) => path.endsWith('.js') && !path.endsWith('syntax.js'))
  .sort();

const OUTCOME_CODES = new Set([
  'CODEC_THREW',
  'CODEC_REPORTED_ERRORS',
  'CODEC_INVALID_RESULT',
  'CODEC_FUNCTION_MISSING',
  'CODEC_TIMEOUT',
  'CODEC_INVALID_INPUT',
]);

function assertOutcome(outcome: DecodeOutcome | EncodeOutcome): void {
  assert.equal(typeof outcome.ok, 'boolean');
  assert.ok(outcome.warnings.every((w) => typeof w === 'string'));
  if (!outcome.ok) assert.ok(OUTCOME_CODES.has(outcome.error.code), outcome.error.code);
}

const frame = fc.record({
  fPort: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 255 })),
  bytes: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 40 }),
});
const expectedDecode = fc.record(
  {
    data: fc.jsonValue({ maxDepth: 3 }),
    warnings: fc.array(fc.string(), { maxLength: 2 }),
    errors: fc.array(fc.string(), { maxLength: 2 }),
  },
  { requiredKeys: ['warnings', 'errors'] },
);

let host: CodecProcess;
before(async () => {
  // A short cap: a runaway input (spinner.js on 0xff) must not slow the run down.
  host = await CodecProcess.start({ timeoutMs: 50 });
});
after(() => host.close());

describe('random frames through every fixture codec', () => {
  for (const file of CODEC_FILES) {
    it(`ends in an outcome and a verdict: ${file}`, async () => {
      const codec: RemoteCodec = await host.load(readFileSync(join(VENDORS, file), 'utf8'));
      await fc.assert(
        fc.asyncProperty(
          frame,
          expectedDecode,
          fc.jsonValue({ maxDepth: 3 }),
          async (input, output, data) => {
            const bytes = Uint8Array.from(input.bytes);
            const expected = output as ExpectedDecode;
            assertOutcome(await codec.decodeUplink({ bytes, fPort: input.fPort }));
            assertOutcome(await codec.decodeDownlink({ bytes, fPort: input.fPort }));
            assertOutcome(await codec.encodeDownlink({ data: data as JsonValue }));
            for (const example of [
              {
                function: 'uplinkDecoder',
                description: 'random',
                input,
                output: expected,
                normalizedOutput: expected,
              },
              { function: 'downlinkDecoder', description: 'random', input, output: expected },
            ] satisfies CodecExample[]) {
              const result = await runExample(codec, example);
              if (!result.passed) assert.equal(typeof result.reason, 'string');
            }
          },
        ),
        { numRuns: 40 },
      );
    });
  }
});

describe('random codec definitions', () => {
  const part = fc.record(
    {
      fileName: fc.oneof(fc.string(), fc.constant('c.js'), fc.jsonValue()),
      examples: fc.oneof(
        fc.jsonValue(),
        fc.array(
          fc.record(
            {
              description: fc.oneof(fc.string(), fc.jsonValue()),
              input: fc.oneof(
                fc.jsonValue(),
                fc.record({ fPort: fc.jsonValue(), bytes: fc.jsonValue(), data: fc.jsonValue() }),
              ),
              output: fc.oneof(
                fc.jsonValue(),
                fc.record(
                  {
                    data: fc.jsonValue(),
                    bytes: fc.jsonValue(),
                    fPort: fc.jsonValue(),
                    errors: fc.jsonValue(),
                    warnings: fc.jsonValue(),
                  },
                  { requiredKeys: [] },
                ),
              ),
              normalizedOutput: fc.jsonValue(),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
      ),
    },
    { requiredKeys: [] },
  );
  const definition = fc.oneof(
    fc.jsonValue(),
    fc.record(
      { uplinkDecoder: part, downlinkEncoder: part, downlinkDecoder: part },
      { requiredKeys: [] },
    ),
  );

  it('read into parts, problems and refused examples, never a throw', () => {
    fc.assert(
      fc.property(definition, (document) => {
        const { parts, problems } = readCodecDefinition(document as JsonValue);
        for (const p of parts) {
          for (const example of p.examples) {
            if (example.ok) assert.equal(example.example.function, p.function);
            else assert.equal(typeof example.reason, 'string');
          }
        }
        for (const problem of problems) assert.equal(typeof problem.reason, 'string');
      }),
      { numRuns: 500 },
    );
  });
});

describe('random YAML text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'galet-yaml-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('parses into JSON or is refused with a RepositoryFileProblem', async () => {
    const files = (await RepositoryFiles.open(dir))!;
    const yamlish = fc.array(
      fc.oneof(
        fc.constantFrom(
          '- ',
          ': ',
          '{',
          '}',
          '[',
          ']',
          '&a ',
          '*a',
          '!!binary ',
          '.nan',
          '\n  ',
          '\n',
          '"',
          "'",
          '#',
          '__proto__',
          '? ',
          '|',
          '>',
        ),
        fc.string({ maxLength: 8 }),
      ),
      { maxLength: 30 },
    );
    await fc.assert(
      fc.asyncProperty(yamlish, async (pieces) => {
        writeFileSync(join(dir, 'x.yaml'), pieces.join(''));
        try {
          const value = await files.readYaml('x.yaml');
          assert.deepEqual(JSON.parse(JSON.stringify(value)), value);
        } catch (error) {
          assert.ok(error instanceof RepositoryFileProblem, String(error));
          assert.equal(error.code, 'YAML_INVALID');
        }
      }),
      { numRuns: 300 },
    );
  });
});
