/**
 * Class membership lists (CSR: the samples of each class, contiguous) and random positives/negatives.
 * Building one checks that the labels can form triplets at all.
 * @module
 */
import { UserError } from "../errors.ts";
import type { Rng } from "../util/rng.ts";

/** The samples of each class, in CSR form. */
export class ClassIndex {
  private constructor(
    /** Label of each sample. */
    readonly labels: Int32Array,
    /** Distinct labels, ascending; class slot c has label `classes[c]`. */
    readonly classes: Int32Array,
    /** Members of class slot c are `members[offsets[c] .. offsets[c + 1])`, ascending. */
    readonly offsets: Uint32Array,
    readonly members: Uint32Array,
    /** Class slot of each sample. */
    readonly slotOf: Uint32Array,
  ) {}

  /**
   * Builds the index. Throws a UserError when there are fewer than two classes or a class has a single
   * sample (no positive can be formed for it) — `what` names the data in the message.
   */
  static build(labels: Int32Array, what = "the training set"): ClassIndex {
    const counts = new Map<number, number>();
    for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
    const classes = Int32Array.from([...counts.keys()].sort((a, b) => a - b));
    if (classes.length < 2) {
      throw new UserError(
        `${what} has ${classes.length} class${
          classes.length === 1 ? "" : "es"
        }; metric learning needs at least two ` +
          "(a negative must come from another class). Check the labels or the split.",
      );
    }
    const single = classes.filter((c) => counts.get(c) === 1);
    if (single.length) {
      throw new UserError(
        `${what} has ${single.length} class(es) with a single sample (label ${
          [...single.slice(0, 5)].join(", ")
        }` +
          `${
            single.length > 5 ? ", ..." : ""
          }): no positive can be formed. Remove those samples or add more.`,
      );
    }
    const slotByLabel = new Map<number, number>();
    classes.forEach((c, i) => slotByLabel.set(c, i));
    const offsets = new Uint32Array(classes.length + 1);
    classes.forEach((c, i) => (offsets[i + 1] = offsets[i] + counts.get(c)!));
    const fill = offsets.slice(0, -1);
    const members = new Uint32Array(labels.length);
    const slotOf = new Uint32Array(labels.length);
    labels.forEach((l, i) => {
      const s = slotByLabel.get(l)!;
      slotOf[i] = s;
      members[fill[s]++] = i;
    });
    return new ClassIndex(labels, classes, offsets, members, slotOf);
  }

  /** Number of samples. */
  get size(): number {
    return this.labels.length;
  }

  /** Number of classes. */
  get classCount(): number {
    return this.classes.length;
  }

  /** Members of class slot `c` (a view). */
  membersOf(c: number): Uint32Array {
    return this.members.subarray(this.offsets[c], this.offsets[c + 1]);
  }

  /** A uniformly random other member of `a`'s class. */
  randomPositive(a: number, rng: Rng): number {
    const m = this.membersOf(this.slotOf[a]);
    // Draw among the n - 1 others: slots at or past a's own rank shift up by one.
    let r = rng.int(m.length - 1);
    if (r >= lowerBound(m, a)) r++;
    return m[r];
  }

  /** A uniformly random sample of another class than `a`'s. */
  randomNegative(a: number, rng: Rng): number {
    const c = this.slotOf[a];
    const own = this.offsets[c + 1] - this.offsets[c];
    // Draw among the size - own samples outside the class: index into members, skipping the class's block.
    let r = rng.int(this.size - own);
    if (r >= this.offsets[c]) r += own;
    return this.members[r];
  }
}

/** First position in ascending `m` whose value is >= `x`. */
function lowerBound(m: Uint32Array, x: number): number {
  let lo = 0, hi = m.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (m[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
