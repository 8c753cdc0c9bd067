import type { HttpRoute } from '../http/server';
import { apiRoutes, type ConsoleEngine } from './api';
import { staticRoutes } from './static-files';

/** The web console on the HTTP server: the page at `/`, its assets under /console/, its JSON API under /api/. */
export function consoleRoutes(engine: ConsoleEngine): HttpRoute[] {
  return [...staticRoutes(), ...apiRoutes(engine)];
}
