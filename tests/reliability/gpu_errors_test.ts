/**
 * A GPU error is a failure, never a warning next to a success: shapes that cannot fit are refused before
 * any GPU work, naming the option; an error the device reports during an operation rejects that operation;
 * one during a run ends it before anything of the failed epoch is written.
 */
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { GpuError, UserError } from "../../lib/errors.ts";
import { EmbeddingHead } from "../../lib/model/head.ts";
import { train } from "../../lib/train.ts";
import { readJsonl } from "../../lib/util/jsonl.ts";
import { assertRefused, denoTask, listDir, tinyIdx } from "./helpers.ts";

Deno.test("the issue's repro: --hidden 45000 is refused before any GPU work, naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-hidden-" });
  try {
    const r = await denoTask("train", [
      ...["--train-limit", "2000", "--test-limit", "500", "--epochs", "1", "--miner", "random"],
      ...["--hidden", "45000", "--out", `${dir}/run`],
    ]);
    assertRefused(
      r,
      /layer 1 of the head \(784 -> 45000\) needs \d+ MiB .* storage binding: use a smaller --hidden/,
    );
    assert.doesNotMatch(r.stderr + r.stdout, /WebGPU error|R@1/);
    assert.deepEqual(await listDir(dir), [], "something was written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the same head in the library: the forward pass rejects with a GpuError, no zeros returned", async () => {
  const gpu = await getGpu();
  const mark = gpu.errorCount;
  using head = EmbeddingHead.create(gpu, { inDim: 784, hidden: [45000], outDim: 64 });
  using x = GpuBuffer.zeros(gpu, "f32", [8, 784]);
  await assert.rejects(() => head.embedAll(x), (e: unknown) => {
    assert.ok(e instanceof GpuError, `not a GpuError: ${e}`);
    assert.match(
      (e as Error).message,
      /GPU error in linear.*binding.*storage binding \(\d+ MiB\): use smaller shapes/,
    );
    return true;
  });
  assert.ok(gpu.errorsSince(mark).length > 0);
});

Deno.test("a GPU error during a run ends it before the epoch is logged or checkpointed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-gpuerr-" });
  try {
    const data = await tinyIdx(dir);
    const gpu = await getGpu();
    const out = `${dir}/run`;
    await assert.rejects(
      () =>
        train({
          dataset: { kind: "idx", dir: data, split: "seen" },
          batchSize: 32,
          epochs: 2,
          outDir: out,
          quiet: true,
          mining: { search: "exact" },
        }, {
          gpu,
          onPhase: (phase) => {
            if (phase !== "train") return;
            // Work the device refuses, outside any error scope (as a bug in a kernel's caller would).
            const raw = gpu.device.createBuffer({
              size: 16,
              usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
            });
            raw.destroy();
            gpu.device.queue.writeBuffer(raw, 0, new Float32Array(4));
          },
        }),
      (e: unknown) => {
        assert.ok(e instanceof GpuError, `not a GpuError: ${e}`);
        assert.match((e as Error).message, /nothing of the failed epoch was written/);
        return true;
      },
    );
    const names = await listDir(out);
    assert.ok(!names.includes("checkpoint.bin") && !names.includes("summary.json"), names.join(", "));
    const log = await readJsonl<{ type: string }>(`${out}/log.jsonl`);
    assert.ok(!log.some((r) => r.type === "epoch"), "the failed epoch was logged as done");
    assert.equal(log.at(-1)?.type, "error");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shapes the adapter cannot hold are refused up front, each naming its option", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-fits-" });
  try {
    const data = await tinyIdx(dir);
    const base = { dataset: { kind: "idx" as const, dir: data, split: "seen" as const }, quiet: true };
    const refuse = (input: object, pattern: RegExp) =>
      assert.rejects(() => train({ ...base, outDir: `${dir}/run`, ...input }), (e: unknown) => {
        assert.ok(e instanceof UserError && !(e instanceof GpuError), `${e}`);
        assert.match((e as Error).message, pattern);
        return true;
      });
    await refuse({ head: { outDim: 2_000_000 } }, /use a smaller head\.outDim/);
    await refuse({ head: { hidden: [8, 3_000_000] } }, /layer 2 .* use a smaller head\.hidden/);
    await refuse({ batchSize: 150, head: { hidden: [4_000_000] } }, /head\.hidden/);
    assert.deepEqual(await listDir(`${dir}/run`), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
