/** Health of one backend (broker, state store, token service) as /health reports it. */
export type BackendState = 'up' | 'connecting' | 'down';

export interface BackendHealth {
  readonly name: string;
  readonly kind: string;
  state(): BackendState;
}
