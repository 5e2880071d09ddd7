import assert from "node:assert/strict";
import { GpuError, ShapeError } from "../../lib/errors.ts";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch, grid1d, packUniform } from "../../lib/gpu/dispatch.ts";
import { loadWgsl, withDefines } from "../../lib/gpu/kernels.ts";
import { WGSL_SOURCES } from "../../lib/gpu/wgsl.ts";
import { GATHER } from "../../lib/gpu/specs/gather.ts";
import { profile } from "../../lib/gpu/timing.ts";
import { encodeGatherRows, gatherRows, gatherRowsRef } from "../../lib/ops/gather.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("adapter report names the adapter and its limits", async () => {
  const gpu = await getGpu();
  assert.ok(gpu.report.name.length > 0);
  assert.equal(typeof gpu.report.isSoftware, "boolean");
  assert.ok(gpu.report.limits.maxStorageBufferBindingSize >= 128 * 2 ** 20);
  assert.match(gpu.describe(), /binding \d+ MiB/);
});

Deno.test("on Linux the context asks wgpu for Vulkan only unless told otherwise", async () => {
  const preset = Deno.env.get("DENO_WEBGPU_BACKEND");
  await getGpu();
  if (Deno.build.os !== "linux") return;
  assert.equal(Deno.env.get("DENO_WEBGPU_BACKEND"), preset || "vulkan");
});

Deno.test("buffers round-trip data, reshape, and free themselves with using", async () => {
  const gpu = await getGpu();
  const data = new Float32Array([1, 2, 3, 4, 5, 6]);
  let kept: GpuBuffer<"f32">;
  {
    using buf = GpuBuffer.fromArray(gpu, data, [2, 3]);
    kept = buf;
    assert.equal(buf.rows, 2);
    assert.equal(buf.cols, 3);
    assert.deepEqual(await buf.read(), data);
    assert.deepEqual(await buf.read(2, 3), new Float32Array([3, 4, 5]));
    assert.deepEqual(buf.reshape([3, 2]).shape, [3, 2]);
    assert.throws(() => buf.reshape([4, 2]), ShapeError);
  }
  assert.ok(kept.destroyed);
  assert.throws(() => GpuBuffer.fromArray(gpu, data, [4, 2]), ShapeError);
  using empty = GpuBuffer.zeros(gpu, "u32", [0, 5]);
  assert.equal((await empty.read()).length, 0);
});

Deno.test("rowChunks splits a matrix into aligned blocks that each fit a binding", async () => {
  const gpu = await getGpu();
  using buf = GpuBuffer.zeros(gpu, "f32", [1001, 7]);
  const chunks = buf.rowChunks(7 * 4 * 100);
  assert.equal(chunks.reduce((s, c) => s + c.rows, 0), 1001);
  const align = gpu.report.limits.minStorageBufferOffsetAlignment;
  for (const c of chunks) {
    assert.equal((c.rowStart * 7 * 4) % align, 0);
    assert.ok(c.rows * 28 <= 2800);
  }
});

Deno.test("withDefines prepends consts; every kernels/*.wgsl file is in the registry, once", async () => {
  assert.equal(
    withDefines("x", { B: 2, A: 0.5, C: true }),
    "const A = 5e-1;\nconst B = 2;\nconst C = true;\nx",
  );
  assert.match(await loadWgsl("gather"), /fn main/);
  const files = [...Deno.readDirSync(new URL("../../kernels/", import.meta.url))]
    .filter((e) => e.isFile && e.name.endsWith(".wgsl"))
    .map((e) => e.name.slice(0, -".wgsl".length)).sort();
  assert.deepEqual(
    Object.keys(WGSL_SOURCES).sort(),
    files,
    "lib/gpu/wgsl.ts must import every kernels/*.wgsl",
  );
  for (const name of files) {
    const text = Deno.readTextFileSync(new URL(`../../kernels/${name}.wgsl`, import.meta.url));
    assert.equal(await loadWgsl(name), text, `${name}: the registry serves the file's text`);
  }
  await assert.rejects(loadWgsl("no_such_kernel"), /Unknown WGSL kernel "no_such_kernel"/);
});

Deno.test("packUniform packs u32, f32 and i32 and rejects non-u32 numbers", () => {
  const v = new DataView(packUniform([7, { f32: 0.5 }, { i32: -3 }]));
  assert.equal(v.byteLength, 16);
  assert.equal(v.getUint32(0, true), 7);
  assert.equal(v.getFloat32(4, true), 0.5);
  assert.equal(v.getInt32(8, true), -3);
  assert.throws(() => packUniform([-1]), RangeError);
});

Deno.test("grid1d keeps each dimension within the dispatch limit", async () => {
  const gpu = await getGpu();
  const max = gpu.maxWorkgroupsPerDim;
  for (const n of [1, max, max + 1, 3 * max + 7]) {
    const [x, y] = grid1d(gpu, n);
    assert.ok(x <= max && y <= max && x * y >= n && (y - 1) * x < n, `n=${n}: ${x}x${y}`);
  }
});

Deno.test("gatherRows matches the reference, incl. repeated and out-of-range indices and blocked sources", async () => {
  const gpu = await getGpu();
  const rng = new Rng(1);
  for (const [rows, cols, count] of [[1, 1, 1], [37, 13, 101], [300, 65, 7]]) {
    const src = rng.uniformArray(rows * cols, -1, 1);
    const idx = new Uint32Array(count).map(() => rng.int(rows + 3)); // some out of range
    using s = GpuBuffer.fromArray(gpu, src, [rows, cols]);
    using i = GpuBuffer.fromArray(gpu, idx);
    using out = await gatherRows(s, i);
    assert.deepEqual(await out.read(), gatherRowsRef(src, cols, idx));
  }
  // Force several source blocks with a small binding size through rowChunks' maxBytes.
  const rows = 1000, cols = 24;
  const src = rng.uniformArray(rows * cols);
  const idx = new Uint32Array(777).map(() => rng.int(rows));
  using s = GpuBuffer.fromArray(gpu, src, [rows, cols]);
  using i = GpuBuffer.fromArray(gpu, idx);
  const orig = s.rowChunks.bind(s);
  s.rowChunks = () => orig(cols * 4 * 64);
  assert.ok(s.rowChunks().length > 10);
  const batch = new CommandBatch(gpu);
  using out = await encodeGatherRows(batch, s, i);
  await batch.submit();
  assert.deepEqual(await out.read(), gatherRowsRef(src, cols, idx));
});

Deno.test("profile reports per-label GPU time", async () => {
  const gpu = await getGpu();
  using s = GpuBuffer.fromArray(gpu, new Float32Array(4096 * 64), [4096, 64]);
  using i = GpuBuffer.fromArray(gpu, new Uint32Array(4096).map((_, k) => 4095 - k));
  const { report } = await profile(gpu, async () => {
    const out = await gatherRows(s, i);
    out.destroy();
  });
  assert.ok(report.wallMs > 0);
  if (gpu.report.hasTimestamps) {
    assert.equal(report.source, "timestamps");
    assert.equal(report.byLabel.get("gatherRows")?.passes, 1);
  } else assert.equal(report.source, "wall");
});

Deno.test("a dispatch whose bindings do not fit its pipeline fails its batch, naming the kernel", async () => {
  const gpu = await getGpu();
  const mark = gpu.errorCount;
  const { pipeline } = await GATHER.pipeline(gpu, "main", { WG: 64 });
  const batch = new CommandBatch(gpu);
  using a = GpuBuffer.zeros(gpu, "f32", [4]);
  batch.dispatch(pipeline, [a], 1); // four bindings expected, one given
  await assert.rejects(
    () => batch.submit(),
    (e) => e instanceof GpuError && /gather\.main.*bindings/.test(e.message),
  );
  assert.ok(gpu.errorsSince(mark).length > 0, "the error is not in the log");
  assert.throws(() => gpu.throwIfErrorsSince(mark), GpuError);
});

Deno.test("an error outside any scope is counted, printed once, and fails the next check", async () => {
  const gpu = await getGpu();
  const mark = gpu.errorCount, before = gpu.uncapturedErrors;
  const originalError = console.error;
  const printed: string[] = [];
  console.error = (msg: string) => printed.push(msg);
  try {
    const raw = gpu.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    raw.destroy();
    gpu.device.queue.writeBuffer(raw, 0, new Float32Array(4)); // to a destroyed buffer: a validation error
    await gpu.device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    console.error = originalError;
  }
  assert.ok(gpu.uncapturedErrors > before, "no uncaptured error counted");
  assert.ok(printed.some((m) => /WebGPU error/.test(m)));
  assert.throws(
    () => gpu.throwIfErrorsSince(mark),
    (e) => e instanceof GpuError && /uncaptured/.test(e.message),
  );
});
