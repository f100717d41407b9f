import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConfig } from '../../config/schema.js';
import type { CredentialStore, Principal } from '../../core/credentials.js';
import type { SystemId, ZoneId } from '../../core/ids.js';

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * API keys from the configuration. Only SHA-256 digests are held in memory; lookups hash the presented key
 * and compare digests in constant time.
 */
export class ConfigCredentialStore implements CredentialStore {
  private readonly keys: Array<{ digest: Buffer; principal: Principal }>;

  constructor(apiKeys: readonly ApiKeyConfig[]) {
    this.keys = apiKeys.map((key) => ({
      digest: key.keySha256 ? Buffer.from(key.keySha256, 'hex') : sha256(key.key!),
      principal: {
        id: key.id,
        kind: 'api-key',
        clearance: key.clearance,
        canPublish: key.publish,
        systems: key.systems as Array<SystemId | '*'>,
        zones: key.zones as ZoneId[],
        scopes: key.scopes,
      },
    }));
  }

  findApiKey(secret: string): Principal | undefined {
    const digest = sha256(secret);
    let found: Principal | undefined;
    // Compare against every key so the time taken does not tell which one matched.
    for (const key of this.keys) if (timingSafeEqual(key.digest, digest)) found = key.principal;
    return found;
  }
}
