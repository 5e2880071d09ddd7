/**
 * `deno task index` and `deno task search` end to end on a small trained run: the CLI's neighbours equal
 * FanngIndex.search run in-process and exact kNN at a high budget; image, vector and test-row queries;
 * galleries; the CPU graph search (the browser fallback); one-line errors.
 */
import assert from "node:assert/strict";
import { FanngIndex } from "../../lib/ann/index.ts";
import { loadIdxSplit } from "../../lib/data/idx.ts";
import { UserError } from "../../lib/errors.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { EmbeddingHead } from "../../lib/model/head.ts";
import { knnSqL2Ref } from "../../lib/ops/knn.ts";
import { decodeRetrievalIndex, type RetrievalContents } from "../../lib/retrieval/format.ts";
import { openRetriever } from "../../lib/retrieval/open.ts";
import type { HostMatrix } from "../../lib/util/matrix.ts";
import { encodePixelsPng } from "../../lib/viz/thumbnails.ts";
import { indexMain } from "../../tasks/index.ts";
import type { IndexRunResult } from "../../lib/retrieval/run_index.ts";
import type { LabeledSplit } from "../../lib/data/dataset.ts";
import { searchMain, type SearchRecord } from "../../tasks/search.ts";
import { runTaskCli, searchJson, type TinyRun, trainTinyRun } from "./helpers.ts";

const gpu = await getGpu();
const dir = await Deno.makeTempDir({ prefix: "dml-search-" });

/** The trained run, its index and what the tests compare with, made on first use (so a --filter that
 * selects none of these tests costs nothing). */
interface Fixture {
  tiny: TinyRun;
  built: IndexRunResult;
  contents: RetrievalContents;
  testSplit: LabeledSplit;
}
let made: Promise<Fixture> | undefined;
function fixture(): Promise<Fixture> {
  made ??= (async () => {
    const tiny = await trainTinyRun(dir);
    const built = (await indexMain([tiny.run, "--quiet"]))!;
    const contents = decodeRetrievalIndex(await Deno.readFile(built.path));
    return { tiny, built, contents, testSplit: await loadIdxSplit(tiny.data, "t10k") };
  })();
  return made;
}
const quiet = () => {};

function rowsOf(m: HostMatrix, rows: number[]): HostMatrix {
  const data = new Float32Array(rows.length * m.cols);
  rows.forEach((r, i) => data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), i * m.cols));
  return { rows: rows.length, cols: m.cols, data };
}

/** The queries' embeddings through the index's head, computed here. */
async function embedHere(rows: number[]): Promise<HostMatrix> {
  const { contents, testSplit } = await fixture();
  using head = EmbeddingHead.fromParameters(gpu, contents.header.head.config, contents.params);
  const f = rowsOf(testSplit.features, rows);
  using x = GpuBuffer.fromArray(gpu, f.data, [f.rows, f.cols]);
  using e = await head.embedAll(x);
  return { rows: rows.length, cols: e.cols, data: await e.read() };
}

/** Neighbour lists with the query's own item dropped, cut to k. */
function withoutSelf(
  indices: Uint32Array,
  distances: Float32Array,
  rows: number[],
  width: number,
  k: number,
) {
  return rows.map((q, r) => {
    const out: { item: number; d: number }[] = [];
    for (let j = 0; j < width && out.length < k; j++) {
      const item = indices[r * width + j];
      if (item !== q) out.push({ item, d: Math.sqrt(distances[r * width + j]) });
    }
    return out;
  });
}

function assertSameNeighbours(
  testSplit: LabeledSplit,
  got: SearchRecord[],
  want: { item: number; d: number }[][],
  what: string,
): void {
  assert.equal(got.length, want.length, what);
  got.forEach((rec, q) => {
    assert.deepEqual(rec.neighbours.map((n) => n.item), want[q].map((w) => w.item), `${what}: query ${q}`);
    rec.neighbours.forEach((n, j) => {
      assert.equal(n.id, `t10k/${n.item}`);
      assert.equal(n.label, testSplit.labels[n.item]);
      assert.ok(
        Math.abs(n.distance - want[q][j].d) <= 1e-5,
        `${what}: distance ${n.distance} vs ${want[q][j].d}`,
      );
    });
  });
}

Deno.test("deno task index: the run's test split, its head, graph, labels, ids and pixels in one file", async () => {
  const { tiny, built, contents, testSplit } = await fixture();
  const INDEX = `${tiny.run}/index`;
  const h = built.header;
  assert.equal(built.path, `${INDEX}/index.bin`);
  assert.equal(h.count, tiny.testRows);
  assert.equal(h.dims, 64);
  assert.deepEqual(h.gallery, { split: "test", dataset: "data" });
  assert.deepEqual(h.features, { kind: "pixels", width: 28, height: 28, channels: 1 });
  assert.deepEqual(h.pixels, { width: 28, height: 28, channels: 1 });
  assert.equal(h.source.run, tiny.run);
  assert.equal(h.source.epochs, 2);
  assert.ok(h.source.recall!["1"] > 0.5);
  assert.deepEqual(contents.ids.slice(0, 3), ["t10k/0", "t10k/1", "t10k/2"]);
  assert.deepEqual(contents.labels, testSplit.labels);
  // The stored embeddings are the run's own final test embeddings (same head, same kernels).
  const runEmb = new Float32Array(Deno.readFileSync(`${tiny.run}/test-embeddings.f32`).buffer);
  runEmb.forEach((v, i) =>
    assert.ok(Math.abs(v - contents.embeddings.data[i]) <= 1e-6, `embedding value ${i}`)
  );
  assert.deepEqual(
    contents.pixels!.subarray(0, 784),
    Uint8Array.from(testSplit.features.data.subarray(0, 784), (v) => Math.round(v * 255)),
  );
});

Deno.test("deno task search --json: the CLI's neighbours equal FanngIndex.search in-process and exact kNN at a high budget", async () => {
  const { tiny, contents, testSplit } = await fixture();
  const INDEX = `${tiny.run}/index`;
  const rows = [3, 8, 21, 149];
  const k = 5;
  const got = await searchJson(INDEX, rows, k);
  got.forEach((rec, q) => {
    assert.deepEqual(rec.query, {
      name: `test row ${rows[q]}`,
      testRow: rows[q],
      id: `t10k/${rows[q]}`,
      label: testSplit.labels[rows[q]],
      class: String(testSplit.labels[rows[q]]),
    });
    assert.equal(rec.neighbours.length, k);
    assert.ok(
      rec.neighbours.every((n, j) => j === 0 || n.distance >= rec.neighbours[j - 1].distance),
      "ascending",
    );
    assert.ok(!rec.neighbours.some((n) => n.item === rows[q]), "the query itself is left out");
  });

  // The same search in this process: the head, then FanngIndex.search over the stored graph (budget as
  // the CLI's default: the index's 256), the query's own item dropped.
  const queries = await embedHere(rows);
  using index = await FanngIndex.fromGraph(gpu, contents.graph, contents.embeddings);
  using res = await index.search(queries, k + 1, { budget: 256 });
  const fanng = withoutSelf(await res.indices.read(), await res.distances.read(), rows, k + 1, k);
  assertSameNeighbours(testSplit, got, fanng, "FanngIndex.search");

  // Exact kNN (plain TS) over the gallery; the graph search at a budget past the gallery size finds it,
  // and so does --exact (GPU brute force).
  const ref = knnSqL2Ref(queries, contents.embeddings, k + 1);
  const exact = withoutSelf(ref.indices, ref.distances, rows, k + 1, k);
  for (const flags of [["--budget", "4000"], ["--exact"]]) {
    assertSameNeighbours(
      testSplit,
      await searchJson(INDEX, rows, k, flags),
      exact,
      `exact kNN vs ${flags.join(" ")}`,
    );
  }
  // The table form names the query and prints a row per neighbour.
  const table = await runTaskCli("search", [INDEX, "--test-row", "3", "--k", "4"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(
    table.stdout,
    /^test row 3 \(t10k\/3\), label 3\nrank +id +label +distance\n +1 +t10k\/\d+ +3 +0\.\d{4}\n/,
  );
  assert.match(table.stdout, /1 query in [\d.]+ ms .* on /);
});

Deno.test("deno task search: an image or a vector of a test row finds that row first; --html draws the grid", async () => {
  const { tiny, testSplit } = await fixture();
  const INDEX = `${tiny.run}/index`;
  const row = 8;
  const pixels = Uint8Array.from(
    testSplit.features.data.subarray(row * 784, (row + 1) * 784),
    (v) => Math.round(v * 255),
  );
  await Deno.writeFile(`${dir}/q.png`, await encodePixelsPng(pixels, 28, 28, 1));
  const byImage =
    (await searchMain([INDEX, "--image", `${dir}/q.png`, "--k", "3", "--html", `${dir}/q.html`], quiet))!;
  assert.equal(byImage.records[0].query.name, `image ${dir}/q.png`);
  assert.equal(byImage.records[0].neighbours[0].item, row);
  assert.ok(
    byImage.records[0].neighbours[0].distance < 1e-3,
    `distance ${byImage.records[0].neighbours[0].distance}`,
  );
  const html = await Deno.readTextFile(`${dir}/q.html`);
  assert.equal(html.match(/<figure/g)?.length, 4, "the query and its 3 neighbours");
  assert.equal(html.match(/src="data:image\/png;base64,/g)?.length, 4, "each with its picture");

  const f32 = testSplit.features.data.slice(row * 784, (row + 2) * 784); // rows 8 and 9
  await Deno.writeFile(`${dir}/q.f32`, new Uint8Array(f32.buffer));
  const byVector = (await searchMain([INDEX, "--vector", `${dir}/q.f32`, "--k", "3"], quiet))!;
  assert.deepEqual(byVector.records.map((r) => r.neighbours[0].item), [8, 9]);
  assert.equal(byVector.records[1].query.name, `vector 1 of ${dir}/q.f32`);
  // A test row leaves itself out; the same row as a vector does not.
  const byRow = (await searchMain([INDEX, "--test-row", "8", "--k", "2"], quiet))!;
  assert.deepEqual(
    byRow.records[0].neighbours.map((n) => n.item),
    byVector.records[0].neighbours.slice(1).map((n) => n.item),
  );
});

Deno.test("deno task index --gallery train|all, --no-pixels: a test row leaves itself out only where the gallery holds it", async () => {
  const { tiny, testSplit } = await fixture();
  const all = (await indexMain([tiny.run, "--gallery", "all", "--out", `${dir}/all`, "--quiet"]))!;
  assert.equal(all.header.count, 300 + tiny.testRows);
  const trainOnly =
    (await indexMain([tiny.run, "--gallery", "train", "--out", `${dir}/train`, "--no-pixels", "--quiet"]))!;
  assert.equal(trainOnly.header.count, 300);
  assert.equal(trainOnly.header.pixels, null);
  assert.ok(!trainOnly.header.sections.some((s) => s.name === "pixels"), "no pixel section");
  using r = await openRetriever(`${dir}/all`);
  assert.deepEqual([r.id(0), r.id(299), r.id(300), r.id(449)], [
    "train/0",
    "train/299",
    "t10k/0",
    "t10k/149",
  ]);
  for (const [index, holdsRow] of [[`${dir}/all`, true], [`${dir}/train`, false]] as const) {
    const out = (await searchMain([index, "--test-row", "4", "--k", "10", "--exact"], quiet))!;
    const ids = out.records[0].neighbours.map((n) => n.id);
    assert.ok(!ids.includes("t10k/4"), `${index}: the query itself is not a result`);
    assert.equal(out.records[0].neighbours[0].label, 4, `${index}: nearest is the query's class`);
    if (!holdsRow) assert.ok(ids.every((id) => id.startsWith("train/")));
  }
  // --no-pixels: no thumbnails, but raw-pixel queries still go through the head.
  using bare = await openRetriever(`${dir}/train`);
  assert.equal(bare.pixels(0), undefined);
  const px = Uint8Array.from(testSplit.features.data.subarray(4 * 784, 5 * 784), (v) => Math.round(v * 255));
  const res = await bare.search(px, 3);
  assert.ok(res.queries[0].every((n) => n.label === 4), "a test picture of class 4 finds class 4");
});

Deno.test("Retriever: the CPU graph search (the fallback where WebGPU cannot create the kernel) walks like the GPU kernel", async () => {
  const { tiny } = await fixture();
  const INDEX = `${tiny.run}/index`;
  using onGpu = await openRetriever(INDEX, { graphSearch: "gpu" });
  using onCpu = await openRetriever(INDEX, { graphSearch: "cpu" });
  const items = [0, 7, 19, 42, 77, 101, 148];
  for (const budget of [24, 64, 4000]) {
    const a = await onGpu.searchItems(items, 6, { budget });
    const b = await onCpu.searchItems(items, 6, { budget });
    assert.equal(a.method, "graph-gpu");
    assert.equal(b.method, "graph-cpu");
    assert.equal(a.evaluations, b.evaluations, `budget ${budget}: evaluations`);
    a.queries.forEach((q, i) => {
      assert.deepEqual(
        q.map((n) => n.item),
        b.queries[i].map((n) => n.item),
        `budget ${budget}, item ${items[i]}`,
      );
      q.forEach((n, j) => assert.ok(Math.abs(n.distance - b.queries[i][j].distance) <= 1e-5));
    });
  }
  assert.deepEqual(onCpu.graphSearchOn, { on: "cpu", reason: "asked for" });
});

Deno.test("deno task search: bad input is one line saying what to fix", async () => {
  const { tiny } = await fixture();
  const INDEX = `${tiny.run}/index`;
  const bad = async (args: string[], pattern: RegExp) =>
    await assert.rejects(() => searchMain(args, quiet), (e: unknown) => {
      assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
      assert.match(e.message, pattern);
      return true;
    });
  await bad([INDEX], /give exactly one query: --test-row, --image or --vector/);
  await bad([INDEX, "--test-row", "1", "--vector", "x.f32"], /give exactly one query/);
  await bad(
    [INDEX, "--test-row", "150"],
    /test row 150 is outside the run's test split \(rows 0..149 of data\)/,
  );
  await bad([INDEX, "--test-row", "1,x"], /--test-row takes whole numbers >= 0 separated by commas/);
  await bad([INDEX, "--test-row", "1", "--k", "0"], /--k must be a whole number >= 1/);
  await bad([INDEX, "--test-row", "1", "--k", "151"], /--k 151 is more than the gallery's 150 items/);
  await Deno.writeFile(`${dir}/short.f32`, new Uint8Array(12));
  await bad([INDEX, "--vector", `${dir}/short.f32`], /has 12 bytes: not whole rows of 784 float32 values/);
  await bad(
    [`${dir}/none`, "--test-row", "1"],
    /none not found: build an index with 'deno task index <run-dir>' first/,
  );

  // A damaged file: the CLI prints one line naming it and exits 1.
  const copy = `${dir}/damaged`;
  await Deno.mkdir(copy);
  const b = await Deno.readFile(`${INDEX}/index.bin`);
  b[b.length >> 1] ^= 4;
  await Deno.writeFile(`${copy}/index.bin`, b);
  const out = await runTaskCli("search", [copy, "--test-row", "1"]);
  assert.equal(out.code, 1);
  assert.equal(
    out.stderr.trim().split("\n").at(-1),
    `error: ${copy}/index.bin is not a usable retrieval index: checksum mismatch (the file is corrupt). ` +
      "Rebuild it with 'deno task index <run-dir>'.",
  );
  assert.equal(out.stdout, "");
});

Deno.test("deno task index: a folder that is not a run, or a run without its checkpoint, is refused", async () => {
  const { tiny } = await fixture();
  await assert.rejects(() => indexMain([`${dir}/nothing`]), /config.json not found: is .* a run folder/);
  await Deno.mkdir(`${dir}/half`);
  await Deno.copyFile(`${tiny.run}/config.json`, `${dir}/half/config.json`);
  await assert.rejects(() => indexMain([`${dir}/half`]), /checkpoint .*checkpoint\.bin not found/);
  await assert.rejects(
    () => indexMain([tiny.run, "--gallery", "val"]),
    /--gallery must be train, test or all/,
  );
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
