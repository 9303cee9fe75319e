import { splitFieldPath } from './field-path.js';

/** A path segment that matches every key of an object and every element of an array. */
export const ANY_SEGMENT = '*';

/**
 * A copy of a decoded object without the values at `paths` (data minimisation: the fields an
 * application chose never to keep). Paths are field paths (`field-path.ts`): `location` drops a
 * whole subtree, `sensors.*.serial` the serial of every sensor. A path that names nothing is
 * ignored; a path ending on an array element replaces it with null. The input is not changed.
 */
export function dropFields<T>(object: T, paths: readonly string[]): T {
  if (paths.length === 0 || typeof object !== 'object' || object === null) return object;
  let copy: unknown = structuredCopy(object);
  for (const path of paths) copy = dropPath(copy, splitFieldPath(path));
  return copy as T;
}

function dropPath(value: unknown, segments: readonly string[]): unknown {
  if (typeof value !== 'object' || value === null || segments.length === 0) return value;
  const [head, ...rest] = segments as [string, ...string[]];
  if (Array.isArray(value)) {
    const matches = (index: number) => head === ANY_SEGMENT || String(index) === head;
    // An element is emptied (null, which is never stored) rather than removed: the indices
    // after it keep naming the same elements.
    if (rest.length === 0) return value.map((item, index) => (matches(index) ? null : item));
    return value.map((item, index) => (matches(index) ? dropPath(item, rest) : item));
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (head !== ANY_SEGMENT && key !== head) continue;
    if (rest.length === 0) delete record[key];
    else record[key] = dropPath(record[key], rest);
  }
  return record;
}

/** A deep copy of the JSON part of a value (own enumerable keys, arrays). */
function structuredCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(structuredCopy);
  if (typeof value === 'object' && value !== null) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      // defineProperty: a `__proto__` key stays an own key instead of changing the prototype.
      Object.defineProperty(copy, key, {
        value: structuredCopy(item),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}
