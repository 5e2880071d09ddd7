import assert from "node:assert/strict";
import { ClassIndex } from "../../lib/mining/classes.ts";
import { assembleEpoch, permutation, randomTriplets } from "../../lib/mining/triplets.ts";
import { batchHardTriplets, sampleClassBalancedBatch, semiHardTriplets } from "../../lib/mining/inbatch.ts";
import { mineSmartRef } from "../../lib/mining/smart.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("ClassIndex lists members per class and refuses unusable labels", () => {
  const ci = ClassIndex.build(Int32Array.from([5, 2, 5, 9, 2, 9, 9]));
  assert.deepEqual([...ci.classes], [2, 5, 9]);
  assert.deepEqual([...ci.membersOf(0)], [1, 4]);
  assert.deepEqual([...ci.membersOf(2)], [3, 5, 6]);
  assert.equal(ci.slotOf[6], 2);
  assert.throws(
    () => ClassIndex.build(Int32Array.from([1, 1, 1])),
    (e) => e instanceof UserError && /two/.test(e.message),
  );
  assert.throws(
    () => ClassIndex.build(Int32Array.from([1, 1, 2, 3, 3])),
    (e) => e instanceof UserError && /single sample/.test(e.message) && /label 2/.test(e.message),
  );
});

Deno.test("random positives are other members of the class, uniformly; negatives are outside it", () => {
  const labels = Int32Array.from({ length: 40 }, (_, i) => i % 4);
  const ci = ClassIndex.build(labels);
  const rng = new Rng(3);
  const counts = new Map<number, number>();
  for (let t = 0; t < 9000; t++) {
    const p = ci.randomPositive(8, rng);
    assert.notEqual(p, 8);
    assert.equal(labels[p], labels[8]);
    counts.set(p, (counts.get(p) ?? 0) + 1);
    const n = ci.randomNegative(8, rng);
    assert.notEqual(labels[n], labels[8]);
  }
  assert.equal(counts.size, 9); // all 9 other members drawn
  for (const c of counts.values()) assert.ok(c > 800 && c < 1200, `non-uniform positive draw: ${c}`);
  const t = randomTriplets(ci, [0, 1, 2], rng);
  for (let i = 0; i < 3; i++) {
    assert.equal(labels[t[3 * i + 1]], labels[t[3 * i]]);
    assert.notEqual(labels[t[3 * i + 2]], labels[t[3 * i]]);
  }
});

Deno.test("assembleEpoch gives every anchor one triplet and honours the mined fraction per batch", () => {
  const n = 103, b = 10;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const ci = ClassIndex.build(labels);
  const rng = new Rng(5);
  // Mined partners for even anchors only.
  const positive = new Int32Array(n).fill(-1), negative = new Int32Array(n).fill(-1);
  for (let a = 0; a < n; a += 2) {
    positive[a] = (a + 3) % n;
    negative[a] = (a + 1) % n;
  }
  const order = permutation(n, rng);
  const e = assembleEpoch(ci, order, b, 0.5, { positive, negative }, rng);
  assert.equal(e.count, n);
  assert.deepEqual([...e.triplets.filter((_, i) => i % 3 === 0)], [...order]);
  for (let s = 0; s < n; s += b) {
    const len = Math.min(b, n - s);
    let m = 0, evens = 0;
    for (let i = s; i < s + len; i++) {
      m += e.mined[i];
      if (order[i] % 2 === 0) evens++;
      if (e.mined[i]) {
        const a = order[i];
        assert.equal(e.triplets[3 * i + 1], positive[a]);
        assert.equal(e.triplets[3 * i + 2], negative[a]);
      }
    }
    assert.equal(m, Math.min(Math.round(0.5 * len), evens));
  }
  const none = assembleEpoch(ci, order, b, 1, undefined, rng);
  assert.equal(none.mined.reduce((x, y) => x + y, 0), 0);
});

Deno.test("mineSmartRef follows the rule on a hand-made 1-D example", () => {
  // Points on a line; class 0 at 0, 1, 3, 7; class 1 at 2, 10.
  const x = [0, 1, 3, 7, 2, 10];
  const labels = Int32Array.from([0, 0, 0, 0, 1, 1]);
  const ci = ClassIndex.build(labels);
  const emb = { rows: 6, cols: 1, data: Float32Array.from(x) };
  const m = mineSmartRef(emb, ci, 2);
  // Anchor 0 (x=0): eps = 1 (to x=1); radius 2; other class beyond d>2: x=2 (d=4) -> n = 4, dan = 4.
  // Positives of class 0 with d > 4: x=3 (d=9), x=7 (d=49) -> p = x=3 (index 2).
  assert.equal(m.eps[0], 1);
  assert.equal(m.negative[0], 4);
  assert.equal(m.dan[0], 4);
  assert.equal(m.positive[0], 2);
  assert.equal(m.dap[0], 9);
  // Anchor 3 (x=7): eps = 9 (x=3 or x=10 both at 9), radius 18; x=2 d=25 qualifies, x=10 d=9 does not -> n = 4.
  // Positives with d > 25: x=1 (36), x=0 (49) -> p = index 1.
  assert.equal(m.negative[3], 4);
  assert.equal(m.positive[3], 1);
  // Anchor 5 (x=10): eps = 9 (x=7); radius 18; class 0 beyond: x=3 (49) -> n = 2; positives: x=2 (64 > 49) -> p = 4.
  assert.equal(m.negative[5], 2);
  assert.equal(m.positive[5], 4);
  // Anchor 1 (x=1): eps = 1; radius 2; x=2 d=1 excluded, x=10 d=81 -> n=5, no positive with d > 81 -> -1.
  assert.equal(m.negative[1], 5);
  assert.equal(m.positive[1], -1);
});

Deno.test("in-batch miners pick the hardest / semi-hard partners", () => {
  // 4 samples: labels a a b b; distances symmetric.
  const labels = [0, 0, 1, 1];
  const D = [
    [0, 5, 3, 9],
    [5, 0, 6, 1],
    [3, 6, 0, 2],
    [9, 1, 2, 0],
  ];
  const dist = Float32Array.from(D.flat());
  const bh = batchHardTriplets(dist, labels);
  assert.deepEqual([...bh], [0, 1, 2, 1, 0, 3, 2, 3, 0, 3, 2, 1]);
  const sh = semiHardTriplets(dist, labels, new Rng(1));
  // Anchor 0: p = 1 (d 5); negatives 2 (3), 3 (9): semi-hard = nearest with d > 5 -> 3.
  assert.deepEqual([...sh.subarray(0, 3)], [0, 1, 3]);
  // Anchor 2: p = 3 (d 2); negatives 0 (3), 1 (6): nearest beyond 2 -> 0.
  assert.deepEqual([...sh.subarray(6, 9)], [2, 3, 0]);
  // Anchor 1: p = 0 (d 5); negatives 2 (6), 3 (1) -> 2.
  assert.deepEqual([...sh.subarray(3, 6)], [1, 0, 2]);
});

Deno.test("class-balanced batches draw P classes with m samples each", () => {
  const labels = Int32Array.from({ length: 500 }, (_, i) => i % 10);
  const ci = ClassIndex.build(labels);
  const batch = sampleClassBalancedBatch(ci, 32, 8, new Rng(2));
  assert.equal(batch.length, 32);
  const per = new Map<number, number>();
  for (const i of batch) per.set(labels[i], (per.get(labels[i]) ?? 0) + 1);
  assert.equal(per.size, 8);
  for (const c of per.values()) assert.equal(c, 4);
  assert.equal(new Set(batch).size, 32);
});
