import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { moduleId, systemId } from '../../src/core/ids.js';
import type { StatusStore } from '../../src/core/status-store.js';
import { uniqueId } from '../helpers/gateway.js';

/** Collects what a watch receives and lets a test await the n-th change without sleeping. */
export class Changes {
  readonly seen: string[] = [];
  private waiters: Array<{ count: number; resolve: () => void }> = [];
  readonly onChange = (json: string): void => {
    this.seen.push(json);
    this.waiters = this.waiters.filter((w) => (this.seen.length >= w.count ? (w.resolve(), false) : true));
  };
  until(count: number, timeoutMs = 5_000): Promise<string[]> {
    if (this.seen.length >= count) return Promise.resolve(this.seen.slice());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} change(s), got ${JSON.stringify(this.seen)}`)), timeoutMs);
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve(this.seen.slice());
        },
      });
    });
  }
}

export interface StoreFactory {
  /** A new store instance ("node"); stores made by one factory share state when the backend is shared. */
  create(): StatusStore;
  /** True when two instances share one view (Redis); false for the single-node memory store. */
  shared: boolean;
}

/** The StatusStore contract (src/core/status-store.ts), run on every implementation. */
export function statusStoreContract(label: string, factory: () => StoreFactory): void {
  describe(`StatusStore contract: ${label}`, () => {
    let make: StoreFactory;
    let store: StatusStore;
    const opened: StatusStore[] = [];
    const open = async () => {
      const s = make.create();
      opened.push(s);
      await s.start();
      return s;
    };

    before(async () => {
      make = factory();
      store = await open();
    });
    after(async () => {
      for (const s of opened) await s.close();
    });

    it('reports up once started, and is named "state"', () => {
      assert.equal(store.state(), 'up');
      assert.equal(store.name, 'state');
    });

    it('stores JSON text as it is and reads it back', async () => {
      const mod = moduleId(uniqueId('mod'));
      assert.equal(await store.get(mod, 'power'), undefined);
      await store.set(mod, 'power', 'true');
      await store.set(mod, 'input', '"hdmi1"');
      await store.set(mod, 'rooms', '[ {"a": 1} ]');
      assert.equal(await store.get(mod, 'power'), 'true');
      assert.equal(await store.get(mod, 'rooms'), '[ {"a": 1} ]');
      assert.deepEqual(await store.getAll(mod), { power: 'true', input: '"hdmi1"', rooms: '[ {"a": 1} ]' });
    });

    it('publishes each change in order, nothing for an unchanged value, null on delete', async () => {
      const mod = moduleId(uniqueId('mod'));
      const changes = new Changes();
      await store.watch(mod, 'volume', changes.onChange);
      await store.set(mod, 'volume', '10');
      await store.set(mod, 'volume', '10');
      await store.set(mod, 'volume', '20');
      await store.delete(mod, 'volume');
      await store.set(mod, 'volume', '30');
      assert.deepEqual(await changes.until(4), ['10', '20', 'null', '30']);
      assert.equal(await store.get(mod, 'volume'), '30');
    });

    it('deleting an unset variable publishes nothing', async () => {
      const mod = moduleId(uniqueId('mod'));
      const changes = new Changes();
      await store.watch(mod, 'x', changes.onChange);
      await store.delete(mod, 'x');
      await store.set(mod, 'x', '1');
      assert.deepEqual(await changes.until(1), ['1']);
      assert.deepEqual(changes.seen, ['1']);
    });

    it('watches are independent; a stopped watch receives nothing more', async () => {
      const mod = moduleId(uniqueId('mod'));
      const first = new Changes();
      const second = new Changes();
      const stopFirst = await store.watch(mod, 'level', first.onChange);
      await store.watch(mod, 'level', second.onChange);
      await store.set(mod, 'level', '1');
      await first.until(1);
      await stopFirst();
      await store.set(mod, 'level', '2');
      assert.deepEqual(await second.until(2), ['1', '2']);
      assert.deepEqual(first.seen, ['1']);
      await stopFirst();
    });

    it('a watcher that throws stops neither the watchers after it nor the writer', async () => {
      const mod = moduleId(uniqueId('mod'));
      const later = new Changes();
      await store.watch(mod, 'flaky', () => {
        throw new Error('a bug in one listener');
      });
      await store.watch(mod, 'flaky', later.onChange);
      await store.set(mod, 'flaky', '1');
      await store.set(mod, 'flaky', '2');
      assert.deepEqual(await later.until(2), ['1', '2']);
    });

    it('a watch does not see other variables or modules', async () => {
      const mod = moduleId(uniqueId('mod'));
      const other = moduleId(uniqueId('mod'));
      const changes = new Changes();
      await store.watch(mod, 'a', changes.onChange);
      await store.set(mod, 'b', '1');
      await store.set(other, 'a', '1');
      await store.set(mod, 'a', '"mine"');
      assert.deepEqual(await changes.until(1), ['"mine"']);
    });

    it('a watch started again after its last stop is live again', async () => {
      const mod = moduleId(uniqueId('mod'));
      const one = new Changes();
      const stop = await store.watch(mod, 'p', one.onChange);
      const stopping = stop();
      const two = new Changes();
      await store.watch(mod, 'p', two.onChange);
      await stopping;
      await store.set(mod, 'p', '5');
      assert.deepEqual(await two.until(1), ['5']);
    });

    it('resolves Name/index through the system lookup and announces the change', async () => {
      const sys = systemId(uniqueId('sys'));
      const announced: string[] = [];
      const got = new Promise<void>((resolve) => {
        const off = store.onSystemChange((s) => {
          if (s !== sys) return;
          announced.push(s);
          off();
          resolve();
        });
      });
      await store.setSystemModules(sys, { 'Display/1': moduleId('mod-a'), 'Display/2': moduleId('mod-b') });
      await got;
      assert.deepEqual(announced, [sys]);
      assert.equal(await store.lookup(sys, 'Display', 2), 'mod-b');
      assert.equal(await store.lookup(sys, 'Display', 3), undefined);
      await store.setSystemModules(sys, { 'Lights/1': moduleId('mod-c') });
      assert.equal(await store.lookup(sys, 'Display', 1), undefined, 'the map is replaced, not merged');
      assert.equal(await store.lookup(sys, 'Lights', 1), 'mod-c');
      assert.equal(await store.lookup(systemId(uniqueId('sys')), 'Lights', 1), undefined);
    });

    it('two nodes: a watch on one sees changes made on the other (when shared)', async (t) => {
      if (!make.shared) {
        t.skip('single-node store');
        return;
      }
      const nodeB = await open();
      const mod = moduleId(uniqueId('mod'));
      const onB = new Changes();
      await nodeB.watch(mod, 'power', onB.onChange);
      await store.set(mod, 'power', 'true');
      await nodeB.set(mod, 'power', 'true');
      await store.set(mod, 'power', 'false');
      assert.deepEqual(await onB.until(2), ['true', 'false'], 'the same value written by the other node publishes nothing');
      assert.equal(await nodeB.get(mod, 'power'), 'false');

      const sys = systemId(uniqueId('sys'));
      const seenOnB = new Promise<string>((resolve) => nodeB.onSystemChange((s) => s === sys && resolve(s)));
      await store.setSystemModules(sys, { 'Display/1': moduleId('mod-x') });
      assert.equal(await seenOnB, sys);
      assert.equal(await nodeB.lookup(sys, 'Display', 1), 'mod-x');
    });
  });
}
