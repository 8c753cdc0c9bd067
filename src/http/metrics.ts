import type { Metrics } from '../metrics';
import { HttpError, sendText, type HttpRoute } from './server';

/**
 * GET /metrics: the Prometheus text format; 404 naming the switch when metrics are off. Any Host:
 * Prometheus scrapes by pod IP or Service name; the series carry counts and timings, no saga's data.
 */
export function metricsRoutes(metrics: Metrics): HttpRoute[] {
  return [{
    method: 'GET',
    path: '/metrics',
    anyHost: true,
    async handle(_req, res) {
      const scraped = metrics.scrape();
      if (!scraped) throw new HttpError(404, 'metrics are off (metrics.enabled: false, or OCH_METRICS_ENABLED=false)');
      const { contentType, text } = await scraped;
      sendText(res, 200, text, contentType);
    },
  }];
}
