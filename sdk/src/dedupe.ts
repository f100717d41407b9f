import { commandStatusType, dataDownloadType } from '../../src/protocol/notify.js';

/**
 * Remembers the last keys seen, to drop repeats of an at-least-once stream. Bounded by count and by the
 * characters the keys hold (a backend chooses the ids, so their length is not ours to trust): the oldest
 * key is forgotten first, so memory stays flat however long the client runs.
 */
export class RecentKeys {
  private readonly keys = new Set<string>();
  private chars = 0;

  constructor(
    private readonly capacity: number,
    private readonly maxChars = Infinity,
  ) {}

  /** True when `key` was seen recently (a duplicate); otherwise records it and returns false. */
  seen(key: string): boolean {
    if (this.keys.has(key)) return true;
    this.keys.add(key);
    this.chars += key.length;
    while (this.keys.size > this.capacity || (this.chars > this.maxChars && this.keys.size > 0)) {
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
      this.chars -= oldest.length;
    }
    return false;
  }

  get size(): number {
    return this.keys.size;
  }

  /** Characters held by the remembered keys. */
  get heldChars(): number {
    return this.chars;
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

/**
 * What makes two notifications the same message, for dropping redeliveries: the id plus the status for a
 * final command status, the id plus a digest of the frame for anything else. Undefined (never dropped) for
 * the updates the spec allows to repeat identically: pending command statuses and textual download statuses.
 * Short keys keep the window's memory independent of message size.
 */
export function messageIdentity(data: { type: string; id: string } & Record<string, unknown>, text: string): string | undefined {
  if (data.type === commandStatusType) {
    if (data.command_status === 2 || data.command_status === 3) return `${data.type}\u0000${data.id}\u0000${data.command_status}`;
    return undefined;
  }
  if (data.type === dataDownloadType && data.output_type === 0) return undefined;
  return `${data.type}\u0000${data.id}\u0000${text.length}\u0000${fnv1a(text)}`;
}

/** 32-bit FNV-1a: a cheap digest; together with type, id and length, a collision needs a deliberate effort. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
