import assert from "node:assert/strict";
import {
  ami,
  contingency,
  entropy,
  expectedMutualInfo,
  lgamma,
  mutualInfo,
  mutualInfoOf,
  nmi,
} from "../../lib/eval/nmi.ts";
import { ShapeError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";
import { oracleCases } from "./oracles.ts";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (|diff| ${Math.abs(a - b)} > ${tol})`);

Deno.test("NMI and AMI match scikit-learn on the oracle clusterings to 1e-9", () => {
  for (const c of oracleCases()) {
    close(nmi(c.labels, c.clusters), c.expected.nmi_of_clusters, 1e-9, `${c.name} NMI`);
    close(ami(c.labels, c.clusters), c.expected.ami_of_clusters, 1e-9, `${c.name} AMI`);
  }
});

Deno.test("NMI of a hand-computed example, identical and renamed partitions, symmetry", () => {
  const a = new Int32Array([0, 0, 1, 1]), b = new Int32Array([5, 5, 5, 9]);
  // p(a) = (1/2, 1/2), p(b) = (3/4, 1/4); joint cells 2/4, 1/4, 1/4.
  const mi = 0.5 * Math.log(0.5 / (0.5 * 0.75)) + 0.25 * Math.log(0.25 / (0.5 * 0.75)) +
    0.25 * Math.log(0.25 / (0.5 * 0.25));
  const ha = Math.log(2), hb = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
  close(mutualInfo(a, b), mi, 1e-15, "MI");
  close(entropy(b), hb, 1e-15, "H(b)");
  close(nmi(a, b), mi / ((ha + hb) / 2), 1e-15, "NMI");
  close(nmi(b, a), nmi(a, b), 1e-15, "symmetry");
  const x = new Int32Array([3, 3, 1, 1, 2, 2, 2]);
  assert.equal(nmi(x, new Int32Array([0, 0, 7, 7, -1, -1, -1])), 1);
  assert.equal(ami(x, new Int32Array([0, 0, 7, 7, -1, -1, -1])), 1);
  // Independent labelings: MI = 0 so NMI = 0.
  assert.equal(nmi(new Int32Array([0, 0, 1, 1]), new Int32Array([0, 1, 0, 1])), 0);
  // scikit-learn's limit cases: one class each is a perfect match; one side split is not.
  assert.equal(nmi(new Int32Array([4, 4, 4]), new Int32Array([1, 1, 1])), 1);
  assert.equal(ami(new Int32Array([4, 4, 4]), new Int32Array([1, 1, 1])), 1);
  assert.equal(nmi(new Int32Array([4, 4, 4]), new Int32Array([1, 2, 3])), 0);
  assert.throws(() => nmi(new Int32Array(3), new Int32Array(4)), ShapeError);
});

Deno.test("lgamma matches closed forms", () => {
  // Arguments below 15 are shifted up by the recurrence: absolute error a few ulps of ln(14!) ~ 25.
  close(lgamma(0.5), 0.5 * Math.log(Math.PI), 1e-14, "lgamma(1/2)");
  close(lgamma(1), 0, 1e-14, "lgamma(1)");
  close(lgamma(2), 0, 1e-14, "lgamma(2)");
  let logFact = 0;
  for (let n = 1; n <= 170; n++) {
    logFact += Math.log(n);
    close(lgamma(n + 1), logFact, 1e-14 * Math.max(1, logFact), `lgamma(${n + 1})`);
  }
  // Stirling for a large argument: ln Gamma(x) ~ (x - 1/2) ln x - x + ln(2 pi)/2 + 1/(12x).
  const x = 1e6;
  close(
    lgamma(x),
    (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + 1 / (12 * x),
    1e-8,
    "lgamma(1e6)",
  );
  assert.throws(() => lgamma(0), RangeError);
});

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  }
  return out;
}

Deno.test("expected mutual information equals the mean MI over all relabelings (permutation model)", () => {
  const rng = new Rng(7);
  for (const [n, ka, kb] of [[6, 2, 3], [7, 3, 3], [7, 2, 4]]) {
    const a = new Int32Array(n).map((_, i) => i % ka);
    const b = new Int32Array(n).map(() => rng.int(kb));
    let sum = 0;
    const perms = permutations(n);
    for (const p of perms) sum += mutualInfo(a, Int32Array.from(p, (i) => b[i]));
    close(expectedMutualInfo(contingency(a, b)), sum / perms.length, 1e-12, `EMI n=${n}`);
  }
});

Deno.test("NMI and AMI on random labelings: bounded, symmetric, AMI near 0 when independent", () => {
  const rng = new Rng(3);
  for (const n of [1, 2, 50, 997]) {
    const a = new Int32Array(n).map(() => rng.int(5));
    const b = new Int32Array(n).map(() => rng.int(7) - 3);
    const v = nmi(a, b);
    assert.ok(v >= 0 && v <= 1, `NMI ${v}`);
    close(nmi(b, a), v, 1e-12, "NMI symmetry");
    close(ami(b, a), ami(a, b), 1e-12, "AMI symmetry");
    assert.ok(mutualInfoOf(contingency(a, b)) >= 0);
  }
  const a = new Int32Array(5000).map(() => rng.int(10)), b = new Int32Array(5000).map(() => rng.int(10));
  assert.ok(Math.abs(ami(a, b)) < 0.01, `AMI of independent labelings ${ami(a, b)}`);
});

/** scikit-learn's expected_mutual_information term by term over every (row, column) pair. */
function emiPairwise(a: Int32Array, b: Int32Array): number {
  const c = contingency(a, b), N = c.total;
  const lf = (n: number) => lgamma(n + 1);
  let emi = 0;
  for (const ai of c.rowSums) {
    for (const bj of c.colSums) {
      for (let nij = Math.max(1, ai - N + bj); nij <= Math.min(ai, bj); nij++) {
        const gln = lf(ai) + lf(bj) + lf(N - ai) + lf(N - bj) - lf(N) - lf(nij) - lf(ai - nij) -
          lf(bj - nij) -
          lf(N - ai - bj + nij);
        emi += (nij / N) * (Math.log(N) + Math.log(nij) - Math.log(ai) - Math.log(bj)) * Math.exp(gln);
      }
    }
  }
  return emi;
}

Deno.test("expected mutual information summed per distinct size pair equals the pairwise sum; 11k classes", () => {
  const rng = new Rng(17);
  for (const [n, ka, kb] of [[50, 3, 7], [600, 40, 25], [2000, 300, 280]]) {
    const a = new Int32Array(n).map(() => rng.int(ka)), b = new Int32Array(n).map(() => rng.int(kb));
    const want = emiPairwise(a, b);
    close(expectedMutualInfo(contingency(a, b)), want, 1e-12 * Math.max(1, want), `EMI n=${n}`);
  }
  // Stanford Online Products' shape: 60,502 points in 11,316 classes of 2-12, clustered into as many.
  const n = 60502;
  const labels = new Int32Array(n).map((_, i) => Math.floor(i / 5.35));
  const clusters = labels.map((l) => (rng.float() < 0.8 ? l : rng.int(11316)));
  const v = nmi(labels, clusters), w = ami(labels, clusters);
  assert.ok(v > 0.9 && v < 1, `NMI ${v}`);
  assert.ok(w > 0.5 && w < v, `AMI ${w}`);
});
