import type { z } from 'zod';
import type { Clearance } from '../core/credentials.js';
import type { ModuleId } from '../core/ids.js';

/**
 * The API a driver author writes against (README "Drivers"). A driver is a plain object made with
 * `defineDriver`: a generic name, a zod schema for its settings, and `load`, which receives the module's
 * context and returns its methods (made with `method`) and optional lifecycle hooks. Everything a driver
 * does to the outside world goes through the context, so the runtime can validate, time out, log and
 * clean up after it.
 */

/** Declared parameters of a method, in call order: name -> zod schema. */
export type ParamShape = Record<string, z.ZodType>;
export type Args<P extends ParamShape> = { [K in keyof P]: z.output<P[K]> };

export interface MethodOptions {
  /** Lowest clearance allowed to call it (default `user`). */
  clearance?: Clearance;
  description?: string;
}

export interface MethodDefinition<P extends ParamShape = ParamShape> {
  readonly params: P;
  readonly run: (args: Args<P>) => unknown;
  readonly clearance: Clearance;
  readonly description?: string;
}

/**
 * A callable method. Positional `exec` arguments are matched to `params` in declaration order and
 * validated before `run` is called; `run` gets them by name. Its return value (or what its promise
 * resolves to) is the exec result; a throw or rejection becomes error 3 `module raised: ...`.
 */
export function method<P extends ParamShape>(params: P, run: (args: Args<P>) => unknown, options: MethodOptions = {}): MethodDefinition<P> {
  return { params, run, clearance: options.clearance ?? 'user', ...(options.description ? { description: options.description } : {}) };
}

/** Return `withCode(value, 202)` from a method to answer with another HTTP-like code than 200. */
export class MethodReply {
  constructor(
    readonly value: unknown,
    readonly code: number,
  ) {}
}
export const withCode = (value: unknown, code: number): MethodReply => new MethodReply(value, code);

/** Lines reach `debug` subscribers of the module and the gateway log. */
export interface DriverLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/**
 * Typed status variables. `set` publishes only when the JSON text changes (the store compares, so it
 * holds across gateway nodes); `delete` publishes `null`. Writes are ordered per module, and an exec
 * answers only once the writes its method made are stored.
 */
export interface StatusVariables<T extends Record<string, unknown>> {
  get<K extends keyof T & string>(name: K): T[K] | undefined;
  set<K extends keyof T & string>(name: K, value: T[K]): void;
  delete(name: keyof T & string): void;
}

export interface DeviceAddress {
  host: string;
  port: number;
}

export interface ModuleContext<S> {
  readonly id: ModuleId;
  /** Current settings (already validated by the driver's schema); updated before `onSettings` runs. */
  readonly settings: S;
  readonly log: DriverLogger;
  /**
   * Declares status variables and publishes the initial values given; a variable left out stays unset
   * (a bind sends nothing) until the driver sets it. `T` is inferred from `initial` or given explicitly.
   */
  status<T extends Record<string, unknown>>(initial: Partial<T>): StatusVariables<T>;
  /** Runs `fn` every `intervalMs` (at least 10 ms) until unload. A throw is logged, the timer goes on. */
  every(intervalMs: number, fn: () => unknown): () => void;
  /** Runs `fn` once after `delayMs` unless cancelled or unloaded first. */
  after(delayMs: number, fn: () => unknown): () => void;
  /** Address of a simulated device the gateway started (config `control.simulators`). */
  device(simulatorId: string): DeviceAddress | undefined;
  /** True until unload starts: long-running loops (reconnects) check it. */
  readonly active: boolean;
}

export interface DriverInstance<S> {
  methods: Record<string, MethodDefinition<any>>;
  /** Settings changed at run time (already validated); `mod.settings` holds the new ones. */
  onSettings?(settings: S): void | Promise<void>;
  /** Release sockets and the like. Timers made with `every`/`after` are cancelled by the runtime. */
  onUnload?(): void | Promise<void>;
}

export interface DriverDefinition<S = any> {
  /** Generic module name inside systems, e.g. `Display` (a module's custom name overrides it). */
  readonly name: string;
  readonly description?: string;
  /** Validates a module's `settings` at start; errors name the module. */
  readonly settings: z.ZodType<S>;
  load(mod: ModuleContext<S>): DriverInstance<S> | Promise<DriverInstance<S>>;
}

/** Identity helper that infers the settings type from the schema for `load`. */
export function defineDriver<Schema extends z.ZodType>(definition: {
  name: string;
  description?: string;
  settings: Schema;
  load(mod: ModuleContext<z.output<Schema>>): DriverInstance<z.output<Schema>> | Promise<DriverInstance<z.output<Schema>>>;
}): DriverDefinition<z.output<Schema>> {
  return definition as DriverDefinition<z.output<Schema>>;
}

/** Driver key (as written in `control.modules[].driver`) -> definition. */
export type DriverRegistry = Readonly<Record<string, DriverDefinition>>;
