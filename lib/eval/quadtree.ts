/**
 * A point quadtree over 2-D points in flat typed arrays, rebuilt every t-SNE iteration, and the Barnes-Hut
 * estimate of t-SNE's repulsive forces from it (van der Maaten, "Accelerating t-SNE using Tree-Based
 * Algorithms", JMLR 2014).
 * @module
 */

/** Deepest level a point is pushed to; points that still share a cell there are kept together. */
const MAX_DEPTH = 48;

/** A quadtree whose cells store their centre, half width, point count and centre of mass. */
export class QuadTree {
  #cap = 0;
  #size = 0;
  cx: Float64Array = new Float64Array(0);
  cy: Float64Array = new Float64Array(0);
  half: Float64Array = new Float64Array(0);
  comX: Float64Array = new Float64Array(0);
  comY: Float64Array = new Float64Array(0);
  count: Int32Array = new Int32Array(0);
  /** First of the four children (-1 for a leaf). */
  child: Int32Array = new Int32Array(0);
  /** A leaf's first point (-1 when empty); identical points share a leaf and are only counted. */
  point: Int32Array = new Int32Array(0);
  depth: Int32Array = new Int32Array(0);
  /** The leaf each point lies in. */
  leafOf: Int32Array = new Int32Array(0);

  /** Number of cells in use. */
  get size(): number {
    return this.#size;
  }

  #grow(min: number): void {
    if (min <= this.#cap) return;
    const cap = Math.max(min, this.#cap * 2, 64);
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.cx = f64(this.cx);
    this.cy = f64(this.cy);
    this.half = f64(this.half);
    this.comX = f64(this.comX);
    this.comY = f64(this.comY);
    this.count = i32(this.count);
    this.child = i32(this.child);
    this.point = i32(this.point);
    this.depth = i32(this.depth);
    this.#cap = cap;
  }

  #newCell(cx: number, cy: number, half: number, depth: number): number {
    this.#grow(this.#size + 1);
    const c = this.#size++;
    this.cx[c] = cx;
    this.cy[c] = cy;
    this.half[c] = half;
    this.comX[c] = 0;
    this.comY[c] = 0;
    this.count[c] = 0;
    this.child[c] = -1;
    this.point[c] = -1;
    this.depth[c] = depth;
    return c;
  }

  #quadrant(cell: number, x: number, y: number): number {
    return this.child[cell] + (x >= this.cx[cell] ? 1 : 0) + (y >= this.cy[cell] ? 2 : 0);
  }

  /** Rebuilds the tree over `n` points stored as [x0, y0, x1, y1, ...]. */
  build(y: Float64Array, n: number): void {
    this.#size = 0;
    if (this.leafOf.length < n) this.leafOf = new Int32Array(n);
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      minX = Math.min(minX, y[2 * i]);
      maxX = Math.max(maxX, y[2 * i]);
      minY = Math.min(minY, y[2 * i + 1]);
      maxY = Math.max(maxY, y[2 * i + 1]);
    }
    const half = (Math.max(maxX - minX, maxY - minY) / 2) * (1 + 1e-9) + 1e-12;
    this.#newCell((minX + maxX) / 2, (minY + maxY) / 2, half, 0);
    for (let i = 0; i < n; i++) this.#insert(y[2 * i], y[2 * i + 1], i, y);
    // Where each point ended (identical points moved down together with the leaf's first point).
    for (let i = 0; i < n; i++) {
      let c = 0;
      while (this.child[c] >= 0) c = this.#quadrant(c, y[2 * i], y[2 * i + 1]);
      this.leafOf[i] = c;
    }
  }

  #insert(x: number, yv: number, i: number, ys: Float64Array): void {
    let cell = 0;
    for (;;) {
      const c = ++this.count[cell];
      this.comX[cell] += (x - this.comX[cell]) / c;
      this.comY[cell] += (yv - this.comY[cell]) / c;
      if (this.child[cell] >= 0) {
        cell = this.#quadrant(cell, x, yv);
        continue;
      }
      const p = this.point[cell];
      if (p < 0) {
        this.point[cell] = i;
        return;
      }
      if ((ys[2 * p] === x && ys[2 * p + 1] === yv) || this.depth[cell] >= MAX_DEPTH) return;
      // Split: the occupant (with any identical points counted with it) moves down; the new point goes on.
      const h = this.half[cell] / 2, d = this.depth[cell] + 1;
      const first = this.#newCell(this.cx[cell] - h, this.cy[cell] - h, h, d);
      this.#newCell(this.cx[cell] + h, this.cy[cell] - h, h, d);
      this.#newCell(this.cx[cell] - h, this.cy[cell] + h, h, d);
      this.#newCell(this.cx[cell] + h, this.cy[cell] + h, h, d);
      this.child[cell] = first;
      this.point[cell] = -1;
      const into = this.#quadrant(cell, ys[2 * p], ys[2 * p + 1]);
      this.point[into] = p;
      this.count[into] = c - 1;
      this.comX[into] = ys[2 * p];
      this.comY[into] = ys[2 * p + 1];
      cell = this.#quadrant(cell, x, yv);
    }
  }
}

/**
 * Barnes-Hut repulsion: for every point i, `force[i] = sum_j q_ij^2 Z^2 (y_i - y_j)` estimated with cells
 * that look small from y_i (cell width / distance < theta), where q_ij Z = 1 / (1 + |y_i - y_j|^2); returns
 * Z = sum_{i != j} 1 / (1 + |y_i - y_j|^2) estimated the same way. theta = 0 gives the exact sums.
 */
export function repulsiveForces(
  tree: QuadTree,
  y: Float64Array,
  n: number,
  theta: number,
  force: Float64Array,
  stack: Int32Array = new Int32Array(Math.max(64, tree.size)),
): number {
  const theta2 = theta * theta;
  const { comX, comY, count, child, half, leafOf } = tree;
  let z = 0;
  for (let i = 0; i < n; i++) {
    const xi = y[2 * i], yi = y[2 * i + 1];
    const own = leafOf[i];
    let fx = 0, fy = 0, top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const c = stack[--top];
      const cnt = count[c];
      if (cnt === 0) continue;
      const dx = xi - comX[c], dy = yi - comY[c];
      const d2 = dx * dx + dy * dy;
      const w = 2 * half[c];
      if (child[c] < 0 || w * w < theta2 * d2) {
        const m = c === own ? cnt - 1 : cnt; // i itself does not repel itself
        if (m === 0) continue;
        const q = 1 / (1 + d2);
        z += m * q;
        const mq2 = m * q * q;
        fx += mq2 * dx;
        fy += mq2 * dy;
      } else {
        const ch = child[c];
        stack[top++] = ch;
        stack[top++] = ch + 1;
        stack[top++] = ch + 2;
        stack[top++] = ch + 3;
      }
    }
    force[2 * i] = fx;
    force[2 * i + 1] = fy;
  }
  return z;
}
