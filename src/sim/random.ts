/**
 * A seeded pseudo-random source, so that a simulation run is reproducible from its seed.
 * Generator: mulberry32 (32-bit state, period 2^32), plenty for traffic simulation and not meant
 * for cryptography. `fork(label)` derives an independent stream, so that adding a device to a
 * run does not change the numbers every other device draws.
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (both included). */
  int(min: number, max: number): number;
  /** Uniform in [min, max). */
  float(min: number, max: number): number;
  /** True with probability `p`. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** Approximately normal (sum of uniforms), mean 0 and standard deviation `sigma`. */
  gaussian(sigma?: number): number;
  bytes(length: number): Uint8Array;
  fork(label: string): Random;
}

/** FNV-1a over the label's UTF-16 code units, mixed with the parent seed. */
function hashLabel(seed: number, label: string): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < label.length; i++) {
    hash ^= label.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

export function createRandom(seed: number): Random {
  const rootSeed = seed >>> 0;
  let state = rootSeed;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const random: Random = {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    float: (min, max) => min + next() * (max - min),
    chance: (p) => next() < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('cannot pick from an empty list');
      return items[Math.floor(next() * items.length)]!;
    },
    gaussian: (sigma = 1) => {
      // Irwin-Hall with 6 terms: variance 6/12, so scale by sqrt(2).
      let sum = 0;
      for (let i = 0; i < 6; i++) sum += next();
      return (sum - 3) * Math.SQRT2 * sigma;
    },
    bytes: (length) => {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
      return out;
    },
    fork: (label) => createRandom(hashLabel(rootSeed, label)),
  };
  return random;
}
