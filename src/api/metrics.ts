import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';

export type MetricSource = () => Record<string, number | Record<string, number>>;

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * Prometheus metrics read from the components' own counters at scrape time: `galet_<prefix>_<name>_total`,
 * with a `reason`/`type` label where a counter is broken down (e.g. malformed datagrams by reason).
 */
export function createMetricsRegistry(
  sources: Record<string, MetricSource>,
  gauges: Record<string, { help: string; read: () => number }> = {},
): Registry {
  const registry = new Registry();
  for (const [name, gauge] of Object.entries(gauges)) {
    new Gauge({
      name: `galet_${name}`,
      help: gauge.help,
      registers: [registry],
      collect() {
        this.set(gauge.read());
      },
    });
  }
  collectDefaultMetrics({ register: registry, prefix: 'galet_' });
  for (const [prefix, read] of Object.entries(sources)) {
    const initial = read();
    for (const [name, value] of Object.entries(initial)) {
      const metricName = `galet_${prefix}_${snakeCase(name)}_total`;
      const labelled = typeof value === 'object';
      new Counter({
        name: metricName,
        help: `${prefix} counter ${name}`,
        labelNames: labelled ? ['kind'] : [],
        registers: [registry],
        collect() {
          const current = read()[name];
          this.reset();
          if (typeof current === 'number') this.inc(current);
          else if (current !== undefined) {
            for (const [kind, count] of Object.entries(current))
              if (count > 0) this.inc({ kind }, count);
          }
        },
      });
    }
  }
  return registry;
}
