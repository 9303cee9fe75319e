/** What the API commands print: JSON for scripts, tables for people. */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table column: its heading and how to show a row's value. */
export interface Column<T> {
  heading: string;
  value: (row: T) => unknown;
}

/** A column of a field shown as it is. */
export function field<T>(name: string, heading = name): Column<T> {
  return { heading, value: (row) => (row as Record<string, unknown>)[name] };
}

/** Rows as an aligned text table; an empty list says so. */
export function formatTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((row) => columns.map((column) => cellText(column.value(row))));
  const widths = columns.map((column, i) =>
    Math.max(column.heading.length, ...cells.map((line) => (line[i] as string).length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, i) => (i === values.length - 1 ? value : value.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.heading.toUpperCase())), ...cells.map(line)].join('\n')}\n`;
}

/** One cell: `-` for nothing, objects as compact JSON, no line breaks, at most 60 characters. */
export function cellText(value: unknown): string {
  let text: string;
  if (value === null || value === undefined || value === '') text = '-';
  else if (typeof value === 'object') text = JSON.stringify(value);
  else text = String(value);
  text = text.replace(/\s+/g, ' ');
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}
