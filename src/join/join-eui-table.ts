/**
 * Which join server serves a JoinEUI: a table of JoinEUI prefixes (`70b3d57ed0000000/36`, the
 * first 36 bits) and ranges (first..last, inclusive), checked when it is built. Prefixes may
 * nest: the longest one that matches wins. A range must overlap nothing else, and two entries
 * with the same prefix are refused: which one a JoinEUI goes to would be a guess. Pure code.
 */

/** One entry's JoinEUIs, as configured. */
export type JoinEuiSelector =
  | { joinEuiPrefix: string }
  | { joinEuiRange: { first: string; last: string } };

/** A refused table: the message names the entry (`joinServers[1]`) and the reason. */
export class JoinEuiTableError extends Error {
  override readonly name = 'JoinEuiTableError';
}

interface Span {
  first: bigint;
  last: bigint;
  /** Prefix length in bits; undefined for a range. */
  prefixBits: number | undefined;
  /** As configured, for messages. */
  text: string;
}

const EUI = /^[0-9a-fA-F]{16}$/;
const ALL_BITS = (1n << 64n) - 1n;

function euiValue(text: string): bigint {
  return BigInt(`0x${text}`);
}

function hex(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

/** The JoinEUIs a selector covers, or a JoinEuiTableError naming `where`. */
export function joinEuiSpan(selector: JoinEuiSelector, where: string): Span {
  if ('joinEuiPrefix' in selector) {
    const text = selector.joinEuiPrefix;
    const match = typeof text === 'string' ? /^([0-9a-fA-F]{16})\/(\d{1,2})$/.exec(text) : null;
    const bits = match === null ? Number.NaN : Number(match[2]);
    if (match === null || bits < 1 || bits > 64) {
      throw new JoinEuiTableError(
        `${where}: joinEuiPrefix must be 16 hex digits, a slash and a length of 1 to 64 bits (70b3d57ed0000000/36), got ${JSON.stringify(text)}`,
      );
    }
    const value = euiValue(match[1]!);
    const hostMask = ALL_BITS >> BigInt(bits);
    if ((value & hostMask) !== 0n) {
      throw new JoinEuiTableError(
        `${where}: joinEuiPrefix ${text} has bits set after its first ${bits}: did you mean ${hex(value & ~hostMask & ALL_BITS)}/${bits}?`,
      );
    }
    return {
      first: value,
      last: value | hostMask,
      prefixBits: bits,
      text: `${match[1]!.toLowerCase()}/${bits}`,
    };
  }
  const range = selector.joinEuiRange;
  const first = range?.first;
  const last = range?.last;
  if (
    typeof first !== 'string' ||
    !EUI.test(first) ||
    typeof last !== 'string' ||
    !EUI.test(last)
  ) {
    throw new JoinEuiTableError(
      `${where}: joinEuiRange must be {"first": 16 hex digits, "last": 16 hex digits}`,
    );
  }
  const span = {
    first: euiValue(first),
    last: euiValue(last),
    prefixBits: undefined,
    text: `${first.toLowerCase()}..${last.toLowerCase()}`,
  };
  if (span.first > span.last) {
    throw new JoinEuiTableError(`${where}: joinEuiRange ${span.text} ends before it starts`);
  }
  return span;
}

/** A table of entries of type T, each with its JoinEUI selector; see the file's comment. */
export class JoinEuiTable<T> {
  /** Longest prefixes first; ranges (disjoint from everything) anywhere. */
  #spans: { span: Span; value: T }[];

  /** Throws a JoinEuiTableError for a malformed selector or an overlap that is not a nesting. */
  constructor(entries: readonly { selector: JoinEuiSelector; value: T; where: string }[]) {
    const spans = entries.map((entry) => ({
      span: joinEuiSpan(entry.selector, entry.where),
      value: entry.value,
      where: entry.where,
    }));
    for (let i = 0; i < spans.length; i++) {
      for (let j = 0; j < i; j++) {
        const a = spans[i]!;
        const b = spans[j]!;
        if (a.span.first > b.span.last || b.span.first > a.span.last) continue;
        const bothPrefixes = a.span.prefixBits !== undefined && b.span.prefixBits !== undefined;
        if (bothPrefixes && a.span.prefixBits !== b.span.prefixBits) continue; // nested
        throw new JoinEuiTableError(
          `${a.where} (${a.span.text}) overlaps ${b.where} (${b.span.text}): ` +
            (bothPrefixes
              ? 'the same prefix twice'
              : 'a range may not overlap another entry; only prefixes nest (the longest wins)'),
        );
      }
    }
    this.#spans = spans
      .map(({ span, value }) => ({ span, value }))
      .sort((a, b) => (b.span.prefixBits ?? 65) - (a.span.prefixBits ?? 65));
  }

  /** The same table with each entry's value transformed. */
  map<U>(transform: (value: T) => U): JoinEuiTable<U> {
    const table = new JoinEuiTable<U>([]);
    table.#spans = this.#spans.map(({ span, value }) => ({ span, value: transform(value) }));
    return table;
  }

  get size(): number {
    return this.#spans.length;
  }

  /** The entry serving `joinEui` (16 hex digits), or undefined. */
  lookup(joinEui: string): T | undefined {
    if (!EUI.test(joinEui)) return undefined;
    const value = euiValue(joinEui);
    for (const { span, value: entry } of this.#spans) {
      if (value >= span.first && value <= span.last) return entry;
    }
    return undefined;
  }
}
