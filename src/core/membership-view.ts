import type { NodeId } from './fleet.js';

/**
 * The part every FleetMembership shares: the live set as last read, whether this node's own heartbeat
 * works, and the listeners told after each read.
 */
export class MembershipView {
  private nodes: NodeId[] = [];
  private ok = false;
  private readonly listeners = new Set<() => void>();

  live(): readonly NodeId[] {
    return this.nodes;
  }

  healthy(): boolean {
    return this.ok;
  }

  onChange(listener: () => void): () => void {
    const own = () => listener();
    this.listeners.add(own);
    return () => this.listeners.delete(own);
  }

  /** Records a successful read; true when the set changed. Listeners are told either way. */
  update(nodes: readonly NodeId[]): boolean {
    const sorted = [...nodes].sort();
    const changed = sorted.join('\n') !== this.nodes.join('\n');
    this.nodes = sorted;
    this.ok = true;
    for (const listener of [...this.listeners]) listener();
    return changed;
  }

  /** This node's heartbeat failed (cut off from the store). */
  failed(): void {
    this.ok = false;
  }
}
