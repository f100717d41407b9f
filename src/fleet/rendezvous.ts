import { createHash } from 'node:crypto';
import type { NodeId } from '../core/fleet.js';
import type { ModuleId } from '../core/ids.js';

/** The weight of a (node, module) pair: the first 8 bytes of SHA-1 over both, as an unsigned integer. */
function weight(node: NodeId, module: ModuleId): bigint {
  return createHash('sha1').update(node).update('\0').update(module).digest().readBigUInt64BE(0);
}

/**
 * Rendezvous (highest random weight) hashing: the node with the highest weight for the module runs it.
 * Every node computes the same answer from the same live set, and a node joining or leaving moves only
 * the modules whose top node it is (or becomes). Ties (practically never) go to the smaller node id.
 */
export function ownerOf(module: ModuleId, nodes: readonly NodeId[]): NodeId | undefined {
  let best: NodeId | undefined;
  let bestWeight = -1n;
  for (const node of nodes) {
    const w = weight(node, module);
    if (w > bestWeight || (w === bestWeight && best !== undefined && node < best)) {
      best = node;
      bestWeight = w;
    }
  }
  return best;
}
