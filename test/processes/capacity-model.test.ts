import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const script = fileURLToPath(new URL('../../../scripts/capacity-model.mjs', import.meta.url));
const costsFile = fileURLToPath(new URL('../../../scripts/capacity-costs.json', import.meta.url));
const doc = readFileSync(new URL('../../../docs/scaling.md', import.meta.url), 'utf8');

interface Costs {
  workload: Record<string, number>;
  unitCosts: Record<string, Record<string, { value: number; source: string }>>;
}

const model = (file = costsFile) => execFileSync(process.execPath, [script, file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** Runs the model on a changed copy of the costs file. */
function modelWith(change: (costs: Costs) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'capacity-model-'));
  try {
    const costs = JSON.parse(readFileSync(costsFile, 'utf8')) as Costs;
    change(costs);
    writeFileSync(join(dir, 'costs.json'), JSON.stringify(costs));
    return model(join(dir, 'costs.json'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cell = (table: string, part: string, column: number) => table.split('\n').find((line) => line.startsWith(`| ${part} |`))!.split(' | ')[column]!;

describe('capacity model (scripts/capacity-model.mjs, docs/scaling.md)', () => {
  it('prints the table docs/scaling.md shows', () => {
    const block = /<!-- capacity-model:begin -->\n([\s\S]*?)\n<!-- capacity-model:end -->/.exec(doc);
    assert.ok(block, 'docs/scaling.md has the capacity-model markers');
    assert.equal(block[1]!.trim(), model(), 'docs/scaling.md is out of date: paste the output of node scripts/capacity-model.mjs');
  });

  it('every unit cost is a measured positive number that names its source', () => {
    const costs = JSON.parse(readFileSync(costsFile, 'utf8')) as Costs;
    for (const [group, entries] of Object.entries(costs.unitCosts)) {
      for (const [key, { value, source }] of Object.entries(entries)) {
        assert.ok(value > 0, `${group}.${key} is ${value}`);
        assert.ok(/docs\/performance\.md|measure-unit-costs/.test(source), `${group}.${key} names where it was measured: ${source}`);
      }
    }
  });

  it('follows its inputs: more users need more gateway nodes, more profiles more RabbitMQ metadata, a missing cost is refused', () => {
    const base = model();
    const moreUsers = modelWith((c) => (c.workload.concurrentUsers! *= 4));
    assert.ok(Number(cell(moreUsers, '**Gateway nodes**', 3).replace(/\D/g, '')) > Number(cell(base, '**Gateway nodes**', 3).replace(/\D/g, '')));
    const moreProfiles = modelWith((c) => (c.workload.profiles! *= 2));
    const gib = (table: string) => Number(/([\d.]+) GiB on each node/.exec(cell(table, 'RabbitMQ metadata', 2))![1]);
    assert.ok(Math.abs(gib(moreProfiles) - 2 * gib(base)) <= 0.15, `${gib(moreProfiles)} vs ${gib(base)}`);
    assert.throws(() => modelWith((c) => delete c.unitCosts.redis!.bytesPerStatusVariable), /redis\.bytesPerStatusVariable is missing/);
  });
});
