import { z } from 'zod';
import type { FunctionDescription } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import type { MethodDefinition } from '../driver-api/driver-api.js';

/**
 * Matches positional exec arguments to a method's declared parameters and validates them.
 * Throws GatewayError('bad_request') naming the method and every bad parameter.
 */
export function parseArguments(name: string, method: MethodDefinition, args: readonly unknown[]): Record<string, unknown> {
  const order = Object.keys(method.params);
  if (args.length > order.length) {
    throw new GatewayError('bad_request', `bad arguments for ${name}: takes ${order.length} argument(s), got ${args.length}`);
  }
  const parsed: Record<string, unknown> = {};
  const problems: string[] = [];
  order.forEach((param, i) => {
    const result = method.params[param]!.safeParse(args[i]);
    if (result.success) {
      if (result.data !== undefined) parsed[param] = result.data;
    } else problems.push(`${param}: ${result.error.issues.map((issue) => describe(issue)).join(', ')}`);
  });
  if (problems.length > 0) throw new GatewayError('bad_request', `bad arguments for ${name}: ${problems.join('; ')}`);
  return parsed;
}

function describe(issue: z.core.$ZodIssue): string {
  return issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message;
}

/** The `functions` description of a method (REST `GET /systems/:id/functions/:module`). */
export function describeFunction(method: MethodDefinition): FunctionDescription {
  const order = Object.keys(method.params);
  const params: Record<string, unknown> = {};
  for (const param of order) {
    const schema = z.toJSONSchema(method.params[param]!, { unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
    delete schema.$schema;
    params[param] = schema;
  }
  return { arity: order.length, params, order, clearance: method.clearance };
}
