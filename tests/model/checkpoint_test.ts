// Checkpoints: round trip (parameters, optimiser state, metadata), resuming gives the same parameters as
// an uninterrupted run, and clear UserErrors for missing, truncated, corrupt, foreign and mismatched files.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { UserError } from "../../lib/errors.ts";
import {
  CHECKPOINT_VERSION,
  crc32,
  decodeCheckpoint,
  loadCheckpoint,
  readCheckpoint,
  saveCheckpoint,
} from "../../lib/model/checkpoint.ts";
import { EmbeddingHead } from "../../lib/model/head.ts";
import { TrainStep } from "../../lib/model/train_step.ts";
import { Rng } from "../../lib/util/rng.ts";

const LOSS = { margin: 0.2, globalWeight: 1, lambda: 1, t: 0.4 };
const OPT = { lr: 0.05, momentum: 0.9, weightDecay: 1e-4 };
const CONFIG = { inDim: 12, outDim: 5, hidden: [7], seed: 3 };

async function setup() {
  const gpu = await getGpu();
  const rng = new Rng(71);
  const features = GpuBuffer.fromArray(gpu, rng.uniformArray(40 * 12), [40, 12]);
  const batches = Array.from({ length: 4 }, () => Uint32Array.from({ length: 3 * 16 }, () => rng.int(40)));
  const dir = await Deno.makeTempDir();
  return { gpu, features, batches, dir };
}

Deno.test("crc32 is the IEEE/zlib CRC", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("checkpoints round-trip parameters, optimiser state and metadata; resuming continues exactly", async () => {
  const { gpu, features, batches, dir } = await setup();
  using _f = features;
  const path = `${dir}/head.ckpt`;
  // Uninterrupted: 4 steps.
  using full = EmbeddingHead.create(gpu, CONFIG);
  using fullStep = new TrainStep(gpu, full, features, LOSS, OPT);
  for (const b of batches) await fullStep.step(b);
  // Interrupted after 2 steps, saved, restored into a fresh head and step, 2 more steps.
  {
    using head = EmbeddingHead.create(gpu, CONFIG);
    using step = new TrainStep(gpu, head, features, LOSS, OPT);
    for (const b of batches.slice(0, 2)) await step.step(b);
    step.setLearningRate(0.05);
    await saveCheckpoint(path, head, step, { epoch: 2, note: "ü" });
    const loaded = await loadCheckpoint(path, gpu);
    using h2 = loaded.head;
    assert.deepEqual(await h2.parameters(), await head.parameters());
    assert.deepEqual(loaded.meta, { epoch: 2, note: "ü" });
    assert.equal(loaded.optimizerState?.steps, 2);
    assert.deepEqual(loaded.optimizerState?.velocities, (await step.optimizerState()).velocities);
    assert.deepEqual(h2.config, head.config);
  }
  using resumed = EmbeddingHead.create(gpu, { ...CONFIG, seed: 99 });
  using resumedStep = new TrainStep(gpu, resumed, features, LOSS, OPT);
  const meta = await loadCheckpoint(path, resumed, resumedStep);
  assert.equal(meta.epoch, 2);
  assert.equal(resumedStep.optimizer.steps, 2);
  for (const b of batches.slice(2)) await resumedStep.step(b);
  assert.deepEqual(await resumed.parameters(), await full.parameters());
  // Files are replaced atomically: no temporary files are left behind.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["head.ckpt"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("missing, foreign, truncated, corrupt, newer-version and mismatched checkpoints fail with a UserError", async () => {
  const { gpu, features, dir } = await setup();
  using _f = features;
  using head = EmbeddingHead.create(gpu, CONFIG);
  const path = `${dir}/head.ckpt`;
  await saveCheckpoint(path, head, undefined, { epoch: 1 });
  const good = await Deno.readFile(path);
  const expectError = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(() => decodeCheckpoint(bytes, "test file"), (e: Error) => {
      assert.ok(e instanceof UserError, `${e.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  expectError(new TextEncoder().encode("hello world, not a checkpoint"), /not a head checkpoint/);
  expectError(good.slice(0, good.length - 9), /truncated/);
  expectError(good.slice(0, 30), /truncated/);
  const flipped = good.slice();
  flipped[flipped.length - 20] ^= 0x40;
  expectError(flipped, /checksum mismatch/);
  const newer = good.slice();
  new DataView(newer.buffer).setUint32(8, CHECKPOINT_VERSION + 1, true);
  expectError(newer, new RegExp(`version ${CHECKPOINT_VERSION + 1} is not supported`));
  await assert.rejects(() => readCheckpoint(`${dir}/nope.ckpt`), /not found/);
  using other = EmbeddingHead.create(gpu, { inDim: 12, outDim: 6 });
  await assert.rejects(() => loadCheckpoint(path, other), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /layers \[12->7, 7->5\].*this head has \[12->6\]/);
    return true;
  });
  using step = new TrainStep(gpu, head, features, LOSS, OPT);
  await assert.rejects(() => loadCheckpoint(path, head, step), /no optimiser state/);
  await Deno.remove(dir, { recursive: true });
});
