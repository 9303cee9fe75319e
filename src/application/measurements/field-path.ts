/**
 * Field paths name a value inside a decoded object: keys and array indices joined by dots
 * (`temperature`, `sensors.0.value`). A key that holds a dot or a backslash escapes it with a
 * backslash (`a\.b` is the one key `a.b`), so that every path splits back into its segments.
 */

export function joinFieldPath(segments: readonly string[]): string {
  return segments.map(escapeSegment).join('.');
}

export function escapeSegment(segment: string): string {
  return segment.replace(/[\\.]/g, (character) => `\\${character}`);
}

/** The segments of a path; the inverse of `joinFieldPath`. */
export function splitFieldPath(path: string): string[] {
  const segments: string[] = [];
  let current = '';
  for (let index = 0; index < path.length; index += 1) {
    const character = path[index];
    if (character === '\\' && index + 1 < path.length) {
      current += path[index + 1];
      index += 1;
    } else if (character === '.') {
      segments.push(current);
      current = '';
    } else {
      current += character;
    }
  }
  segments.push(current);
  return segments;
}
