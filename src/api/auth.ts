import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The admin token: from GALET_ADMIN_TOKEN, or generated on first start and kept in
 * `<dataDir>/admin.token` (mode 0600). `created` tells the caller to print it, once.
 */
export async function loadOrCreateAdminToken(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ token: string; created: boolean; source: 'environment' | 'file' }> {
  const fromEnv = env['GALET_ADMIN_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16) throw new Error('GALET_ADMIN_TOKEN must be at least 16 characters');
    return { token: fromEnv, created: false, source: 'environment' };
  }
  const path = join(dataDir, 'admin.token');
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length >= 16) return { token, created: false, source: 'file' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = `galet_${randomBytes(24).toString('base64url')}`;
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return { token, created: true, source: 'file' };
}

/** Compares a presented bearer token with the expected one in constant time. */
export class TokenVerifier {
  readonly #expectedDigest: Buffer;

  constructor(token: string) {
    this.#expectedDigest = digest(token);
  }

  verify(presented: string | undefined): boolean {
    if (presented === undefined) return false;
    // Hashing first makes the comparison length-independent.
    return timingSafeEqual(digest(presented), this.#expectedDigest);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
