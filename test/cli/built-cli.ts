/**
 * The `galet` CLI as plain JavaScript, so that a test running it as a child process pays a Node
 * start-up and not tsx's compilation on top (about 0.15 s instead of 0.4 s per command).
 *
 * - `dist/cli/main.js` when `npm run build` wrote every file of `dist/` after the source file it
 *   comes from was last changed (CI builds before it tests);
 * - else `src/` compiled with esbuild, file by file as tsc does (the same layout, so worker
 *   threads and package.json are found where the built CLI looks for them), into a temporary
 *   directory named after the sources' content: built once, by the first test file of a run that
 *   needs it, and reused until a source changes.
 *
 * Tests that start child processes from a module of src/ (codecs' CodecProcess) can import that
 * module's built copy with `builtModule`, so that each child, too, starts from plain JavaScript.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, version as esbuildVersion } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));
const sourceDir = join(root, 'src');
const CACHE_PREFIX = 'galet-cli-';
/** A build unused for this long is removed when another is made (a test file takes seconds). */
const CACHE_MAX_IDLE_MS = 10 * 60 * 1000;

/** The path of the CLI's entry point to run with `node`. */
export const cliEntry: string = await builtCli();

/**
 * The URL to `import()` for the built copy of `src/<sourceFile>` (given as its `.ts` path, e.g.
 * `application/codecs/index.ts`), from the same build as `cliEntry`.
 */
export function builtModule(sourceFile: string): string {
  if (!existsSync(join(sourceDir, sourceFile))) throw new Error(`no src/${sourceFile}`);
  const distDir = dirname(dirname(cliEntry));
  return pathToFileURL(join(distDir, sourceFile.replace(/\.ts$/, '.js'))).href;
}

async function builtCli(): Promise<string> {
  const sources = readdirSync(sourceDir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .sort();
  if (distIsFresh(sources)) return join(root, 'dist', 'cli', 'main.js');

  const hash = createHash('sha256').update(`esbuild ${esbuildVersion}\0`);
  for (const file of ['package.json', 'tsconfig.json']) {
    hash
      .update(`${file}\0`)
      .update(readFileSync(join(root, file)))
      .update('\0');
  }
  for (const file of sources) {
    hash
      .update(`src/${file}\0`)
      .update(readFileSync(join(sourceDir, file)))
      .update('\0');
  }
  const dir = join(tmpdir(), `${CACHE_PREFIX}${hash.digest('hex').slice(0, 20)}`);
  const entry = join(dir, 'dist', 'cli', 'main.js');
  if (existsSync(entry)) {
    const now = new Date();
    utimesSync(dir, now, now);
    return entry;
  }

  // Built aside, then renamed into place: test files running in parallel may race to build it.
  const building = `${dir}.${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(building);
    await build({
      entryPoints: sources.map((file) => join(sourceDir, file)),
      outdir: join(building, 'dist'),
      outbase: sourceDir,
      tsconfig: join(root, 'tsconfig.json'),
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
    });
    // `main.js` reads ../../package.json (its version); packages resolve through node_modules.
    copyFileSync(join(root, 'package.json'), join(building, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(building, 'node_modules'), 'dir');
    renameSync(building, dir);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(entry)) throw error;
    // Another test file built the same sources first.
  }
  removeIdleBuilds(dir);
  return entry;
}

/** Whether every source file has a built file in dist/ written after the source last changed. */
function distIsFresh(sources: string[]): boolean {
  for (const file of sources) {
    const built = join(root, 'dist', file.replace(/\.ts$/, '.js'));
    let builtAt: number;
    try {
      builtAt = statSync(built).mtimeMs;
    } catch {
      return false;
    }
    if (builtAt < statSync(join(sourceDir, file)).mtimeMs) return false;
  }
  return true;
}

function removeIdleBuilds(keep: string): void {
  const base = tmpdir();
  for (const name of readdirSync(base)) {
    const path = join(base, name);
    if (!name.startsWith(CACHE_PREFIX) || path === keep) continue;
    try {
      if (Date.now() - statSync(path).mtimeMs > CACHE_MAX_IDLE_MS) {
        rmSync(path, { recursive: true, force: true });
      }
    } catch {
      // Removed meanwhile by another run.
    }
  }
}
