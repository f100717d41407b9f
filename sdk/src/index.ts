export { NotificationClient } from './notify-client.js';
export type {
  CommandResult,
  CommandStatusEvent,
  CommandStatusMessage,
  DataDownloadEvent,
  DataDownloadMessage,
  DeliveryMode,
  NotificationClientEvents,
  NotificationClientOptions,
  NotificationMessage,
  PolledCommandStatus,
} from './notify-client.js';
export * from './errors.js';
export type { CloseInfo, ConnectionOptions } from './managed-socket.js';
export type { ConnectionStatus, StatusEvent, StatusStream } from './status.js';
export type { BackoffOptions } from './backoff.js';
export { backoffDelayMs } from './backoff.js';
export type { CallOptions, Clock, OfflineOptions, OfflinePolicy } from './timing.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket.js';
export { ControlClient } from './control-client.js';
export type {
  BindResult,
  ControlClientEvents,
  ControlClientOptions,
  ControlFrameIn,
  ControlMeta,
  DebugLine,
  Decoder,
  ExecOptions,
  ExecResult,
  SubscribeOptions,
  ModuleTarget,
  VariableTarget,
} from './control-client.js';
