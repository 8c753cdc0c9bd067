import type { SagaStore } from '../engine/store';
import type { Transport } from '../engine/transport';
import { sendJson, type HttpRoute } from './server';

/** What the probes ask of the process. */
export interface Probed {
  /**
   * 'RUNNING' when it takes work, its consumers in; anything else is not ready: starting, joining
   * (calls served, the Kafka consumer groups not in yet), draining.
   */
  state(): string;
  store(): SagaStore | undefined;
  transport(): Transport | undefined;
}

/**
 * Kubernetes probes, answered whatever the Host (kubelet sends the pod's IP: anyHost). They say
 * only whether the process is up and ready: nothing a page of another site could use. /healthz (liveness): the process answers. /readyz (readiness): it takes work,
 * and its store and transport answer; 503 with the reason otherwise, so that a draining or cut-off
 * pod gets no traffic.
 */
export function healthRoutes(p: Probed): HttpRoute[] {
  return [
    { method: 'GET', path: '/healthz', anyHost: true, handle: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      anyHost: true,
      async handle(_req, res) {
        const state = p.state();
        if (state !== 'RUNNING') return sendJson(res, 503, { status: 'not ready', reason: state.toLowerCase() });
        const failures: Record<string, string> = {};
        await Promise.all([
          ['store', p.store()] as const,
          ['transport', p.transport()] as const,
        ].map(async ([name, part]) => {
          try {
            if (!part) throw new Error('not started');
            await part.ping();
          } catch (err) {
            failures[name] = err instanceof Error ? err.message : String(err);
          }
        }));
        if (Object.keys(failures).length > 0) return sendJson(res, 503, { status: 'not ready', reason: 'unreachable', ...failures });
        sendJson(res, 200, { status: 'ready' });
      },
    },
  ];
}
