import { MemoryStatusStore } from '../../src/backends/memory/memory-status-store.js';
import { statusStoreContract } from '../suites/status-store.contract.js';

statusStoreContract('memory', () => ({ create: () => new MemoryStatusStore(), shared: false }));
