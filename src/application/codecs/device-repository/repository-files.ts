import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { parse } from 'yaml';
import type { JsonValue } from '../types.js';
import { RepositoryFileProblem } from './errors.js';

/** Largest YAML file read: the biggest definitions of the real repository are a few hundred KiB. */
export const MAX_YAML_BYTES = 2 * 1024 * 1024;
/** Largest codec source read (the sandbox applies its own, usually smaller, limit). */
export const MAX_SOURCE_BYTES = 4 * 1024 * 1024;

/**
 * Ids of vendors, devices and codecs become file names. They must be one path segment:
 * letters, digits, `.`, `_` and `-`, starting with a letter or a digit (the repository's own
 * rule is stricter: lower case and dashes).
 */
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isRepositoryId(value: unknown): value is string {
  return typeof value === 'string' && ID.test(value);
}

/**
 * Read access to one checkout, confined to it: every path is relative to the root, and codec
 * files named by a `fileName` must stay inside their vendor's folder, symbolic links included.
 */
export class RepositoryFiles {
  private constructor(readonly root: string) {}

  /** The checkout at `path` (resolved through symbolic links); undefined when it is no folder. */
  static async open(path: string): Promise<RepositoryFiles | undefined> {
    try {
      const root = await realpath(path);
      return (await stat(root)).isDirectory() ? new RepositoryFiles(root) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether a repository-relative path names an existing folder. */
  async isFolder(path: string): Promise<boolean> {
    try {
      return (await stat(resolve(this.root, path))).isDirectory();
    } catch {
      return false;
    }
  }

  /** Whether a repository-relative path names an existing file. */
  async isFile(path: string): Promise<boolean> {
    try {
      return (await stat(resolve(this.root, path))).isFile();
    } catch {
      return false;
    }
  }

  /** A YAML file as a JSON value; a RepositoryFileProblem when it is missing or invalid. */
  async readYaml(path: string): Promise<JsonValue> {
    const text = await this.#readText(path, MAX_YAML_BYTES);
    let value: unknown;
    try {
      // YAML 1.2 core schema: no custom tags, no timestamps; anchors bounded against alias bombs.
      value = parse(text, {
        schema: 'core',
        uniqueKeys: true,
        maxAliasCount: 100,
        logLevel: 'error',
        prettyErrors: true,
      });
    } catch (error) {
      // A pretty error's first line ends with " at line L, column C:" before a code excerpt.
      const message = firstLine(error).replace(/:$/, '');
      throw new RepositoryFileProblem('YAML_INVALID', `${path}: ${message}`);
    }
    const problem = jsonProblem(value, '');
    if (problem !== undefined) {
      throw new RepositoryFileProblem('YAML_INVALID', `${path}: ${problem}`);
    }
    return value as JsonValue;
  }

  /**
   * The source named by a codec definition's `fileName`, which is relative to the definition's
   * folder (`vendor/<vendor>/`) and must stay inside it.
   */
  async readCodecSource(vendorFolder: string, fileName: string): Promise<string> {
    const folder = resolve(this.root, vendorFolder);
    const target = resolve(folder, fileName);
    if (isAbsolute(fileName) || !isInside(folder, target)) {
      throw new RepositoryFileProblem(
        'PATH_OUTSIDE_VENDOR',
        `fileName ${JSON.stringify(fileName)} leaves the vendor's folder ${vendorFolder}`,
      );
    }
    const path = relative(this.root, target);
    let real: string;
    try {
      real = await realpath(target);
    } catch {
      throw new RepositoryFileProblem('FILE_MISSING', `${path}: file not found`);
    }
    if (!isInside(await realpath(folder), real)) {
      throw new RepositoryFileProblem(
        'PATH_OUTSIDE_VENDOR',
        `${path} is a link that leaves the vendor's folder ${vendorFolder}`,
      );
    }
    return this.#readText(path, MAX_SOURCE_BYTES);
  }

  async #readText(path: string, maxBytes: number): Promise<string> {
    let absolute: string;
    let size: number;
    try {
      absolute = await realpath(resolve(this.root, path));
    } catch {
      throw new RepositoryFileProblem('FILE_MISSING', `${path}: file not found`);
    }
    // A folder or file linked from outside the checkout is not read.
    if (!isInside(this.root, absolute)) {
      throw new RepositoryFileProblem(
        'PATH_OUTSIDE_VENDOR',
        `${path} is a link out of the repository`,
      );
    }
    try {
      const info = await stat(absolute);
      if (!info.isFile()) throw new Error('not a file');
      size = info.size;
    } catch {
      throw new RepositoryFileProblem('FILE_MISSING', `${path}: file not found`);
    }
    if (size > maxBytes) {
      throw new RepositoryFileProblem(
        'FILE_TOO_LARGE',
        `${path}: ${size} bytes, more than the ${maxBytes} read`,
      );
    }
    try {
      return await readFile(absolute, 'utf8');
    } catch (error) {
      throw new RepositoryFileProblem('FILE_MISSING', `${path}: ${firstLine(error)}`);
    }
  }
}

function isInside(folder: string, path: string): boolean {
  return path.startsWith(folder + sep);
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0]!.trim();
}

/** Where a parsed YAML value stops being JSON (NaN, infinities, `__proto__` keys). */
function jsonProblem(value: unknown, path: string): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : `${path || 'the document'} is ${value}`;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = jsonProblem(value[i], `${path}[${i}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const key of Object.keys(value)) {
      if (key === '__proto__') return `${path || 'the document'} has a __proto__ key`;
      const problem = jsonProblem(
        (value as Record<string, unknown>)[key],
        path ? `${path}.${key}` : key,
      );
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  return `${path || 'the document'} is not a JSON value`;
}
