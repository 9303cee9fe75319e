// Entry point of `npm run bench -- <suite> [...]`: runs the named benchmark suites in turn.
import { runCodecsBench } from './codecs.js';
import { runCommitBench } from './commit.js';
import { runLorawanBench } from './lorawan.js';
import { runMeasurementsBench } from './measurements.js';
import { runPipelineBench } from './pipeline.js';
import { runUplinkBench } from './uplink.js';

const SUITES: Record<string, () => Promise<void>> = {
  codecs: runCodecsBench,
  commit: runCommitBench,
  lorawan: runLorawanBench,
  measurements: runMeasurementsBench,
  pipeline: runPipelineBench,
  uplink: runUplinkBench,
};

const requested = process.argv.slice(2);
if (requested.length === 0 || requested.some((name) => !(name in SUITES))) {
  console.error(`usage: npm run bench -- <suite> [...]; suites: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
for (const name of requested) await SUITES[name]!();
