/**
 * The driver author's API, importable as `switchboard/driver` (package `exports`): what a driver file
 * needs to define a driver, and the reconnecting TCP line client most device drivers want.
 */
export { defineDriver, method, withCode, MethodReply } from './driver-api.js';
export type {
  Args,
  DeviceAddress,
  DriverDefinition,
  DriverInstance,
  DriverLogger,
  DriverRegistry,
  MethodDefinition,
  MethodOptions,
  ModuleContext,
  ParamShape,
  StatusVariables,
} from './driver-api.js';
export { TcpLineClient, type TcpLineClientOptions } from './transport/tcp-line-client.js';
