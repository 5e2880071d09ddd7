/**
 * The ONNX backbone: protobuf codec, graph surgery (exposing pool5), onnxruntime-web against a plain-TS
 * forward pass, the GoogLeNet-architecture graph end to end, providers and errors.
 */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { ProtoWriter, readFields, readPackedVarints, readVarintSigned } from "../../lib/backbone/protobuf.ts";
import { exposeOutput, readOnnxModel, resolveOutputName } from "../../lib/backbone/onnx_graph.ts";
import { OnnxBackbone } from "../../lib/backbone/onnx.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assertAllClose } from "../helpers.ts";
import { buildSmallCnn } from "../fixtures/small_cnn.ts";
import { buildGoogLeNet } from "../../tasks/bench/_googlenet.ts";
import { runReference } from "../fixtures/onnx_ref.ts";
import { OnnxGraph } from "../../tasks/bench/_onnx_builder.ts";

const quiet = { log: () => {} };

function randomImages(n: number, size: number, seed: number, scale = 1): Float32Array {
  return new Rng(seed).uniformArray(n * 3 * size * size, -scale, scale);
}

Deno.test("protobuf: fields round-trip, including negative int64 and packed varints", () => {
  const inner = new ProtoWriter().string(1, "héllo").finish();
  const bytes = new ProtoWriter()
    .varint(1, 300)
    .varint(2, -1)
    .varint(3, 2 ** 40 + 5)
    .bytes(4, inner)
    .packedVarints(5, [1, 128, 16384, -2])
    .float(6, 1.5)
    .finish();
  const fields = [...readFields(bytes)];
  assert.deepEqual(fields.map((f) => f.field), [1, 2, 3, 4, 5, 6]);
  assert.equal(fields[0].varint, 300);
  assert.equal(readVarintSigned(fields[1].varint), -1);
  assert.equal(fields[2].varint, 2 ** 40 + 5);
  assert.equal(new TextDecoder().decode([...readFields(fields[3].bytes)][0].bytes), "héllo");
  assert.deepEqual(readPackedVarints(fields[4]).map(readVarintSigned), [1, 128, 16384, -2]);
  assert.equal(new DataView(fields[5].bytes.buffer, fields[5].bytes.byteOffset).getFloat32(0, true), 1.5);
  // Copying raw fields reproduces the message byte for byte.
  const copy = new ProtoWriter();
  for (const f of fields) copy.raw(f.raw);
  assert.deepEqual(copy.finish(), bytes);
});

Deno.test("onnx graph: reading a model lists inputs, outputs and nodes", () => {
  const cnn = buildSmallCnn();
  const info = readOnnxModel(cnn.bytes);
  assert.equal(info.inputs.length, 1);
  assert.deepEqual(info.inputs[0], { name: "input", elemType: 1, dims: ["N", 3, 20, 20] });
  assert.deepEqual(info.outputs.map((o) => o.name), ["probs"]);
  assert.equal(info.nodes.length, cnn.graph.nodes.length);
  assert.equal(info.opsets.get(""), 13);
  assert.equal(resolveOutputName(info, "pool5"), cnn.pooled, "pool5 resolves to the last average pool");
  assert.equal(resolveOutputName(info, "logits"), "logits");
  assert.throws(() => readOnnxModel(new Uint8Array([0x0a, 0xff, 0xff])), UserError);
});

Deno.test("onnx graph: an unknown output name is a UserError listing the available names", () => {
  const info = readOnnxModel(buildSmallCnn().bytes);
  const err = assert.throws(() => resolveOutputName(info, "pool9"), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /no tensor named 'pool9'/);
    assert.match(e.message, /\/relu2\/Relu_output_0/);
    assert.match(e.message, /logits/);
    return true;
  });
  void err;
});

Deno.test("onnx graph: surgery prunes the classifier and frees a fixed batch dimension", () => {
  const cnn = buildSmallCnn(3, 20, true);
  const res = exposeOutput(cnn.bytes, cnn.pooled);
  assert.deepEqual(res.input.dims, ["batch", 3, 20, 20]);
  const info = readOnnxModel(res.model);
  assert.deepEqual(info.outputs.map((o) => o.name), [cnn.pooled]);
  assert.deepEqual(info.nodes.map((n) => n.opType).slice(-2), ["Relu", "GlobalAveragePool"]);
  assert.equal(res.keptNodes, cnn.graph.nodes.length - 3, "Flatten, Gemm and Softmax dropped");
  assert.ok(!info.initializerNames.has("fc.weight") && info.initializerNames.has("conv1.weight"));
});

Deno.test("onnxruntime (wasm): the small CNN matches the plain-TS forward pass; pool5 rows are flattened", async () => {
  const cnn = buildSmallCnn(11, 20);
  const n = 3;
  const x = randomImages(n, cnn.size, 5, 2);
  const ref = runReference(cnn.graph, { dims: [n, 3, cnn.size, cnn.size], data: x });

  const full = await OnnxBackbone.load(cnn.bytes, { output: cnn.output, provider: "wasm", ...quiet });
  const probs = await full.run(x, n, cnn.size);
  assert.deepEqual([probs.rows, probs.cols], [n, 3]);
  assertAllClose(probs.data, ref.get(cnn.output)!.data, { atol: 1e-5, rtol: 1e-4, what: "probs" });
  await full.release();

  const net = await OnnxBackbone.load(cnn.bytes, { output: "pool5", provider: "wasm", ...quiet });
  assert.equal(net.outputName, cnn.pooled);
  assert.equal(net.provider, "wasm");
  assert.match(net.providerDetail, /^wasm \(\d+ threads?/);
  const feats = await net.run(x, n, cnn.size);
  assert.deepEqual([feats.rows, feats.cols], [n, cnn.featureDim]);
  assertAllClose(feats.data, ref.get(cnn.pooled)!.data, { atol: 1e-5, rtol: 1e-4, what: "pooled features" });
  // One image at a time gives the same rows as a batch.
  const one = await net.run(x.subarray(3 * 20 * 20), 1, cnn.size);
  assertAllClose(one.data, feats.data.subarray(cnn.featureDim, 2 * cnn.featureDim), {
    atol: 1e-6,
    what: "row 1",
  });
  await net.release();
});

Deno.test("GoogLeNet architecture (thin, 64x64): ORT pool5 matches the plain-TS forward pass", async () => {
  const g = buildGoogLeNet({ seed: 2, inputSize: 64, widthScale: 0.125, classes: 10 });
  const n = 2;
  const x = randomImages(n, 64, 9, 50);
  const ref = runReference(g.graph, { dims: [1, 3, 64, 64], data: x.subarray(0, 3 * 64 * 64) }, g.pool5);
  const net = await OnnxBackbone.load(g.bytes, { output: "pool5", provider: "wasm", ...quiet });
  assert.equal(net.outputName, "pool5/7x7_s1_1");
  assert.ok(net.caffeNaming);
  const feats = await net.run(x, n, 64);
  assert.deepEqual([feats.rows, feats.cols], [n, g.featureDim]);
  const want = ref.get(g.pool5)!.data;
  assertAllClose(feats.data.subarray(0, g.featureDim), want, { atol: 1e-3, rtol: 1e-3, what: "pool5 row 0" });
  await net.release();
});

Deno.test("GoogLeNet architecture (224x224, real widths): pool5 surgery, batching, N x 1024 rows", async () => {
  const g = buildGoogLeNet({ seed: 1 });
  const info = readOnnxModel(g.bytes);
  assert.deepEqual(info.inputs[0].dims, [1, 3, 224, 224], "fixed batch of 1 like the Model Zoo file");
  assert.equal(info.nodes.length, 143);
  const conv = info.nodes.filter((n) => n.opType === "Conv").length;
  assert.equal(conv, 57, "GoogLeNet has 57 convolutions");
  assert.ok(info.nodes.some((n) => n.name === "pool5/7x7_s1" && n.opType === "AveragePool"));
  assert.ok(info.nodes.some((n) => n.name === "inception_5b/output" && n.opType === "Concat"));

  const edited = exposeOutput(g.bytes, resolveOutputName(info, "pool5"));
  assert.deepEqual(edited.input.dims, ["batch", 3, 224, 224]);
  assert.equal(edited.keptNodes, 139, "dropout, reshape, classifier and softmax pruned");

  const x = randomImages(3, 224, 4, 100);
  const net = await OnnxBackbone.load(g.bytes, { output: "pool5", provider: "wasm", ...quiet });
  assert.deepEqual(net.inputSize, { channels: 3, height: 224, width: 224 });
  const feats = await net.run(x, 3, 224);
  assert.deepEqual([feats.rows, feats.cols], [3, 1024]);
  assert.ok(
    feats.data.every(Number.isFinite) && feats.data.some((v) => v > 0),
    "finite, non-trivial ReLU features",
  );
  await net.release();

  // The unedited model (batch 1) gives class probabilities; pool5 through the classifier in plain TS
  // must give the same, so the exposed tensor is the one feeding loss3/classifier.
  const full = await OnnxBackbone.load(g.bytes, { output: g.outputName, provider: "wasm", ...quiet });
  const W = g.graph.initializers.get(g.classifierWeight)!.data as Float32Array;
  const b = g.graph.initializers.get(g.classifierBias)!.data as Float32Array;
  for (const i of [0, 2]) {
    const prob = await full.run(x.subarray(i * 3 * 224 * 224), 1, 224);
    const f = feats.data.subarray(i * 1024, (i + 1) * 1024);
    const logits = Array.from({ length: 1000 }, (_, j) => {
      let s = b[j];
      for (let k = 0; k < 1024; k++) s += W[j * 1024 + k] * f[k];
      return s;
    });
    const mx = Math.max(...logits);
    const e = logits.map((l) => Math.exp(l - mx));
    const sum = e.reduce((a, v) => a + v, 0);
    assertAllClose(prob.data, e.map((v) => v / sum), { atol: 1e-5, rtol: 1e-3, what: `prob of image ${i}` });
  }
  await full.release();
});

Deno.test("backbone errors: missing model file, garbage file, several inputs", async () => {
  await assert.rejects(() => OnnxBackbone.load("/nonexistent/googlenet.onnx", quiet), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /model file not found/);
    return true;
  });
  await assert.rejects(() => OnnxBackbone.load(new Uint8Array([1, 2, 3, 4, 5]), quiet), UserError);
  const old = new OnnxGraph("opset-6", 6).input("x", [1, 3]);
  old.node("Relu", ["x"], ["y"]).output("y");
  await assert.rejects(
    () => OnnxBackbone.load(old.encode(), { output: "y", ...quiet }),
    (e: unknown) => e instanceof UserError && /opset 6; onnxruntime runs opset 7 and newer/.test(e.message),
  );
  const cast = new OnnxGraph("int-output").input("x", ["N", 3, 2, 2]);
  cast.node("Cast", ["x"], ["y"], { to: 6 }).output("y");
  const castNet = await OnnxBackbone.load(cast.encode(), { output: "y", provider: "wasm", ...quiet });
  await assert.rejects(() => castNet.run(new Float32Array(12), 1, 2), /holds int32 values, not float32/);
  await castNet.release();
  const g = new OnnxGraph("two-inputs").input("a", [1, 3]).input("b", [1, 3]);
  g.node("Add", ["a", "b"], ["c"]).output("c");
  await assert.rejects(() => OnnxBackbone.load(g.encode(), { output: "c", ...quiet }), /exactly one/);
  await assert.rejects(
    () => OnnxBackbone.load(buildSmallCnn().bytes, { output: "nope", ...quiet }),
    (e: unknown) => e instanceof UserError && /Available tensor names/.test(e.message),
  );
});

async function hasWebGpuAdapter(): Promise<boolean> {
  try {
    return !!(await navigator.gpu?.requestAdapter());
  } catch {
    return false;
  }
}

Deno.test({
  name: "onnxruntime (webgpu EP in Deno): the small CNN matches wasm, and the log says which EP ran",
  ignore: !(await hasWebGpuAdapter()),
  fn: async () => {
    const cnn = buildSmallCnn(13, 20);
    const x = randomImages(2, cnn.size, 8, 2);
    const lines: string[] = [];
    const gpu = await OnnxBackbone.load(cnn.bytes, { provider: "webgpu", log: (l) => lines.push(l) });
    assert.equal(gpu.provider, "webgpu");
    assert.ok(lines.some((l) => /execution provider webgpu \(adapter: /.test(l)), lines.join("\n"));
    const a = await gpu.run(x, 2, cnn.size);
    await gpu.release();
    const cpu = await OnnxBackbone.load(cnn.bytes, { provider: "wasm", ...quiet });
    const b = await cpu.run(x, 2, cnn.size);
    await cpu.release();
    assertAllClose(a.data, b.data, { atol: 1e-4, rtol: 1e-3, what: "webgpu vs wasm" });
  },
});

Deno.test("provider auto: picks wasm on a software adapter or none, and logs why", async () => {
  const lines: string[] = [];
  const net = await OnnxBackbone.load(buildSmallCnn().bytes, { log: (l) => lines.push(l) });
  const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
  const software = !adapter ||
    (adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter ||
    /llvmpipe|lavapipe|swiftshader/i.test(adapter.info.description);
  if (software) assert.equal(net.provider, "wasm");
  assert.ok(lines.some((l) => l.includes(`execution provider ${net.provider}`)), lines.join("\n"));
  await net.release();
});
