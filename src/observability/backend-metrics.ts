import type { BackendHealth, BackendState } from '../core/backend-state.js';
import type { GatewayMetrics } from './metrics.js';

/** A backend whose state changes can be watched (the broker, the status store). */
export interface WatchableBackend extends BackendHealth {
  onStateChange?(listener: (state: BackendState) => void): () => void;
}

/**
 * Exports a backend's state (`switchboard_backend_up`, read at scrape time) and counts its reconnections
 * (`switchboard_backend_reconnects_total`): a transition to `up` after it had been up and went away.
 * Returns the function that stops watching.
 */
export function trackBackendState(backend: WatchableBackend, metrics: GatewayMetrics): () => void {
  metrics.probeBackend(backend.name, () => backend.state() === 'up');
  metrics.backendReconnects.inc({ backend: backend.name }, 0);
  let wasUp = backend.state() === 'up';
  let lost = false;
  const stop = backend.onStateChange?.((state) => {
    if (state === 'up') {
      if (lost) metrics.backendReconnects.inc({ backend: backend.name });
      wasUp = true;
      lost = false;
    } else if (wasUp) {
      lost = true;
    }
  });
  return stop ?? (() => {});
}
