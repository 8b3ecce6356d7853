// Type declarations for `deltacast/prometheus`.
import type { Hub } from './index.js';

export interface HubMetricsOptions {
  /** A prom-client Registry (default: prom-client's global registry). */
  register?: unknown;
  /** Metric name prefix. Default 'deltacast_'. */
  prefix?: string;
  /** Constant labels on every metric, e.g. { hub: 'prices' }. */
  labels?: Record<string, string>;
}

/** Registers the hub's stats as prom-client metrics; returns a function that removes them. */
export function hubMetrics(hub: Hub, options?: HubMetricsOptions): () => void;
