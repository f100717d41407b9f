/**
 * Remembers the last `capacity` keys seen, to drop repeats of an at-least-once stream. Bounded: the oldest
 * key is forgotten first, so memory stays flat however long the client runs.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity: number) {}

  /** True when `key` was seen recently (a duplicate); otherwise records it and returns false. */
  seen(key: string): boolean {
    if (this.keys.has(key)) return true;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value as string);
    return false;
  }

  get size(): number {
    return this.keys.size;
  }
}

/** A bounded map that forgets its oldest entries (recent terminal results of commands). */
export class RecentMap<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }

  get size(): number {
    return this.map.size;
  }
}
