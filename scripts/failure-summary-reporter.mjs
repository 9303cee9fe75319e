// A node:test reporter that prints nothing while the tests run and, at the end, every failed
// test again with its file and error. The TAP stream of a long run is cut in CI logs; this
// summary is the part that has to be seen.
export default async function* failureSummary(source) {
  const failures = [];
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { name, file, details } = event.data;
    // A suite fails because a test in it failed: that test is already listed.
    if (details?.error?.failureType === 'subtestsFailed') continue;
    failures.push({ name, file, error: details?.error });
  }
  if (failures.length === 0) return;
  yield `\n# ${failures.length} failed:\n`;
  for (const { name, file, error } of failures) {
    yield `\n## ${name}\n#   file: ${file ?? '(unknown)'}\n`;
    const cause = error?.cause ?? error;
    const text = String(cause?.stack ?? cause?.message ?? cause ?? 'no error given');
    yield `${text
      .split('\n')
      .slice(0, 30)
      .map((line) => `#   ${line}`)
      .join('\n')}\n`;
  }
}
