import type { z } from 'zod';

/**
 * Help for keys the strict schema refused: the keys allowed where the unknown one was found, and the
 * nearest of them. Typos like `prot` or `joinDeadlineMS` would otherwise pass silently as defaults, so the
 * schema refuses them and this turns zod's "Unrecognized key" into something a person can act on.
 *
 * It reads the zod schema's own definition, so every object added to the schema later is covered without
 * a list to keep in step.
 */

/** The part of a zod 4 schema definition this walk needs; other kinds are leaves. */
interface SchemaDef {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  catchall?: z.core.$ZodType;
  innerType?: z.core.$ZodType;
  in?: z.core.$ZodType;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  options?: z.core.$ZodType[];
  discriminator?: string;
}

const defOf = (schema: z.core.$ZodType): SchemaDef => schema._zod.def as unknown as SchemaDef;

/** Unwraps default/optional/nullable/pipe wrappers down to the schema that checks the value. */
function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if ((def.type === 'default' || def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault') && def.innerType) current = def.innerType;
    else if (def.type === 'pipe' && def.in) current = def.in;
    else return current;
  }
}

/** The object schemas a value may be checked against (one, or the matching options of a union). */
function objectsFor(schema: z.core.$ZodType, value: unknown): z.core.$ZodType[] {
  const inner = unwrap(schema);
  const def = defOf(inner);
  if (def.type === 'object') return [inner];
  if (def.type === 'union' && def.options) {
    const options = def.options.flatMap((option) => objectsFor(option, value));
    if (def.discriminator && value !== null && typeof value === 'object') {
      const tag = (value as Record<string, unknown>)[def.discriminator];
      const matching = options.filter((option) => {
        const literal = defOf(unwrap(defOf(option).shape?.[def.discriminator!] ?? option)) as SchemaDef & { values?: unknown[] };
        return literal.values?.includes(tag) ?? false;
      });
      if (matching.length > 0) return matching;
    }
    return options;
  }
  return [];
}

/** Follows a zod issue path through the schema (and the input, for unions); undefined where it cannot. */
function schemaAt(root: z.core.$ZodType, input: unknown, path: ReadonlyArray<PropertyKey>): Array<{ schema: z.core.$ZodType; value: unknown }> {
  let here: Array<{ schema: z.core.$ZodType; value: unknown }> = [{ schema: root, value: input }];
  for (const segment of path) {
    const next: typeof here = [];
    for (const { schema, value } of here) {
      const child = value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[segment] : undefined;
      const inner = unwrap(schema);
      const def = defOf(inner);
      if (def.type === 'array' && def.element) next.push({ schema: def.element, value: child });
      else if (def.type === 'record' && def.valueType) next.push({ schema: def.valueType, value: child });
      else {
        for (const object of objectsFor(inner, value)) {
          const field = defOf(object).shape?.[String(segment)];
          if (field) next.push({ schema: field, value: child });
        }
      }
    }
    here = next;
  }
  return here;
}

/** The keys an object at `path` of `input` may have, sorted; empty when the path does not lead to an object. */
export function knownKeysAt(root: z.core.$ZodType, input: unknown, path: ReadonlyArray<PropertyKey>): string[] {
  const keys = new Set<string>();
  for (const { schema, value } of schemaAt(root, input, path)) {
    for (const object of objectsFor(schema, value)) for (const key of Object.keys(defOf(object).shape ?? {})) keys.add(key);
  }
  return [...keys].sort();
}

/** Edit distance (insertions, deletions, substitutions; case changes count half so `MS` vs `Ms` is near). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const x = a[i - 1]!;
      const y = b[j - 1]!;
      const substitution = x === y ? 0 : x.toLowerCase() === y.toLowerCase() ? 0.5 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + substitution);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The candidate nearest to `key`, if it is near enough to be a plausible typo (about a third of its length). */
export function closestKey(key: string, candidates: readonly string[]): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(key, candidate);
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  if (!best) return undefined;
  return best.distance <= Math.max(2, Math.ceil(key.length / 3)) ? best.candidate : undefined;
}

/** One line per unknown key: `notify.joinDeadlineMS: unknown key (did you mean "joinDeadlineMs"?)`. */
export function describeUnknownKey(prefix: string, key: string, known: readonly string[]): string {
  const name = prefix ? `${prefix}.${key}` : key;
  const suggestion = closestKey(key, known);
  if (suggestion) return `${name}: unknown key (did you mean "${suggestion}"?)`;
  return known.length > 0 ? `${name}: unknown key (known here: ${known.join(', ')})` : `${name}: unknown key`;
}
