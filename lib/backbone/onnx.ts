/**
 * An ONNX image model run through onnxruntime-web, with an inner tensor (GoogLeNet's pool5) exposed as
 * its feature output by editing the graph before the session starts (lib/backbone/onnx_graph.ts), and
 * each image's output flattened to one row (N x 1024 for pool5).
 *
 * Execution providers, and what runs where in Deno:
 * - `webgpu`: onnxruntime-web's WebGPU EP (the `onnxruntime-web/webgpu` build). It works in Deno
 *   through `navigator.gpu`; operators it lacks run on its CPU EP inside the same session. Its wasm
 *   part runs single-threaded here (its thread workers load from blob: URLs, which Deno refuses).
 * - `wasm`: the CPU EP (the package's Node build, whose thread workers Deno runs), multi-threaded
 *   (default: half the cores, at most 4).
 * - `auto` (default): `webgpu` on a hardware adapter, `wasm` when there is no adapter or only a
 *   software one (Mesa llvmpipe runs GoogLeNet ~20x slower than wasm). If the WebGPU session fails to
 *   start, it falls back to wasm and says so.
 * onnxruntime falls back silently between providers, so the backbone logs the one that actually
 * started (with the adapter the WebGPU EP picked) and keeps it in `provider` / `providerDetail`.
 *
 * onnxruntime-web is imported on first use, so importing this module stays light.
 *
 * @example
 * ```ts
 * import { OnnxBackbone } from "./onnx.ts";
 * // `images`: n preprocessed 224 x 224 images, NCHW float32 (lib/backbone/preprocess.ts writes them).
 * async function pool5(images: Float32Array, n: number) {
 *   const net = await OnnxBackbone.load("googlenet-12.onnx", { output: "pool5" });
 *   return await net.run(images, n, 224); // [n x 1024]
 * }
 * ```
 * @module
 */
import { fmtShape, ShapeError, UserError } from "../errors.ts";
import { getGpu } from "../gpu/device.ts";
import type { HostMatrix } from "../util/matrix.ts";
import { exposeOutput, type OnnxDim, readOnnxModel, resolveOutputName, tensorNames } from "./onnx_graph.ts";

/** The oldest default-domain opset onnxruntime has kernels for. */
const MIN_OPSET = 7;

/** Which execution provider to ask for. */
export type ProviderChoice = "auto" | "webgpu" | "wasm";

/** Options for {@link OnnxBackbone.load}. */
export interface OnnxBackboneOptions {
  /**
   * Tensor to expose as the feature (exact name, or `pool5`; default `pool5`).
   * @default "pool5"
   * @default `pool5`
   */
  output?: string;
  /**
   * Execution provider (default `auto`).
   * @default "auto"
   * @default `auto`
   */
  provider?: ProviderChoice;
  /**
   * wasm threads (default: half the CPU cores, at most 4, onnxruntime-web's own default; on a busy
   * 2-core machine 2 threads ran ~1.4x slower than 1).
   * @default half the CPU cores, at most 4, onnxruntime-web's own default
   */
  threads?: number;
  /**
   * Where log lines go (default: stderr).
   * @default stderr
   */
  log?: (line: string) => void;
}

/** The onnxruntime-web module (either build; they share one API). */
export type Ort = typeof import("npm:onnxruntime-web@1.30.0");
/** An onnxruntime-web inference session. */
export type Session = import("npm:onnxruntime-web@1.30.0").InferenceSession;

// The Node build's Emscripten glue replaces globalThis.Worker with node:worker_threads' Worker while it
// starts its thread pool; the pool exists once a session is created, so the web Worker is put back then.
const webWorker = globalThis.Worker;
function restoreWorker(): void {
  if (globalThis.Worker !== webWorker) globalThis.Worker = webWorker;
}

let wasmOrt: Promise<Ort> | undefined;
let webgpuOrt: Promise<Ort> | undefined;

function loadWasmOrt(threads: number): Promise<Ort> {
  wasmOrt ??= import("npm:onnxruntime-web@1.30.0").then((ort) => {
    ort.env.wasm.numThreads = threads;
    ort.env.logLevel = "error";
    return ort;
  });
  return wasmOrt;
}

function loadWebgpuOrt(): Promise<Ort> {
  webgpuOrt ??= import("npm:onnxruntime-web@1.30.0/webgpu").then((ort) => {
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = "error";
    return ort as unknown as Ort;
  });
  return webgpuOrt;
}

function defaultThreads(): number {
  return Math.max(1, Math.min(4, Math.ceil((navigator.hardwareConcurrency ?? 1) / 2)));
}

function stderrLog(line: string): void {
  console.error(line);
}

/** The sha256 of `bytes`, hex. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new UserError(
        `model file not found: ${path}. Give the path of an ONNX image model (see README: GoogLeNet ONNX files).`,
      );
    }
    throw new UserError(`cannot read model file ${path}: ${(e as Error).message}`);
  }
}

/** Picks the provider for `auto`: WebGPU only on a hardware adapter. */
async function chooseProvider(choice: ProviderChoice, log: (l: string) => void): Promise<"webgpu" | "wasm"> {
  if (choice !== "auto") return choice;
  if (!("gpu" in navigator) || !navigator.gpu) {
    log("backbone: no WebGPU in this runtime; using the wasm execution provider");
    return "wasm";
  }
  try {
    const gpu = await getGpu();
    if (gpu.report.isSoftware) {
      log(
        `backbone: the WebGPU adapter is software (${gpu.report.name}), where onnxruntime's WebGPU EP is ` +
          `far slower than its CPU EP; using wasm (provider "webgpu" forces WebGPU)`,
      );
      return "wasm";
    }
    return "webgpu";
  } catch (e) {
    log(
      `backbone: no WebGPU adapter (${
        (e as Error).message.split("\n")[0]
      }); using the wasm execution provider`,
    );
    return "wasm";
  }
}

/** A started session and what it runs on. */
interface StartedSession {
  ort: Ort;
  session: Session;
  provider: "webgpu" | "wasm";
  detail: string;
}

/**
 * Starts a session on `provider`; a WebGPU failure falls back to wasm with a warning, unless WebGPU
 * was asked for explicitly (`required`), where it is an error.
 */
async function startSession(
  model: Uint8Array,
  provider: "webgpu" | "wasm",
  required: boolean,
  threads: number,
  source: string,
  log: (line: string) => void,
): Promise<StartedSession> {
  if (provider === "webgpu") {
    try {
      const ort = await loadWebgpuOrt();
      const session = await ort.InferenceSession.create(model, {
        executionProviders: ["webgpu"],
        logSeverityLevel: 3,
      });
      // The EP's device (and so the adapter it picked) is published on env.webgpu once a session exists.
      const device = await (ort.env.webgpu as unknown as { device?: Promise<GPUDevice> | GPUDevice }).device;
      const adapter = (device as (GPUDevice & { adapterInfo?: GPUAdapterInfo }) | undefined)?.adapterInfo;
      const detail = `webgpu (adapter: ${adapter?.description || adapter?.vendor || "unknown"}; ` +
        `operators without a WebGPU kernel run on onnxruntime's CPU EP)`;
      return { ort, session, provider, detail };
    } catch (e) {
      if (required) {
        throw new UserError(`the WebGPU execution provider failed to start: ${(e as Error).message}`);
      }
      log(
        `backbone: WARNING: the WebGPU execution provider failed to start (${
          (e as Error).message
        }); falling back to wasm`,
      );
    }
  }
  const ort = await loadWasmOrt(threads);
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ["wasm"],
      logSeverityLevel: 3,
    });
    const n = ort.env.wasm.numThreads ?? 1;
    return { ort, session, provider: "wasm", detail: `wasm (${n} thread${n === 1 ? "" : "s"}, SIMD)` };
  } catch (e) {
    throw new UserError(`onnxruntime could not load ${source}: ${(e as Error).message}`);
  } finally {
    restoreWorker();
  }
}

/** A loaded ONNX image backbone with one feature output. */
export class OnnxBackbone {
  #featureDim: number | undefined;

  private constructor(
    readonly ort: Ort,
    readonly session: Session,
    /** The model file's sha256 (hex), the model part of a feature cache key. */
    readonly modelHash: string,
    /** The tensor exposed as the feature output (after resolving `pool5`). */
    readonly outputName: string,
    readonly inputName: string,
    /** The input's declared dims after the batch edit, e.g. ["batch", 3, 224, 224]. */
    readonly inputDims: OnnxDim[] | undefined,
    /** The provider that started: "webgpu" or "wasm". */
    readonly provider: "webgpu" | "wasm",
    /** What started, for logs: provider, adapter or threads. */
    readonly providerDetail: string,
    /** Whether the model looks like a Caffe export (Caffe layer names such as conv1/7x7_s2, pool5/7x7_s1). */
    readonly caffeNaming: boolean,
  ) {}

  /** Loads a model file (path or bytes), exposes `output`, and starts a session. */
  static async load(model: string | Uint8Array, options: OnnxBackboneOptions = {}): Promise<OnnxBackbone> {
    const log = options.log ?? stderrLog;
    const source = typeof model === "string" ? model : "the model";
    const bytes = typeof model === "string" ? await readModelFile(model) : model;
    const modelHash = await sha256Hex(bytes);
    const info = readOnnxModel(bytes, source);
    const opset = info.opsets.get("") ?? info.opsets.get("ai.onnx");
    if (opset !== undefined && opset < MIN_OPSET) {
      throw new UserError(
        `${source} uses ONNX opset ${opset}; onnxruntime runs opset ${MIN_OPSET} and newer. For GoogLeNet take ` +
          `googlenet-7, -8, -9 or -12.onnx from the ONNX Model Zoo, or convert this file with ` +
          `onnx.version_converter.convert_version(model, 12).`,
      );
    }
    const outputName = resolveOutputName(info, options.output ?? "pool5", source);
    const edited = exposeOutput(bytes, outputName, {}, source);
    const names = tensorNames(info);
    const caffeNaming = names.some((n) => /^(conv1\/7x7_s2|pool5\/7x7_s1)/.test(n));
    log(
      `backbone: ${source}: output '${outputName}'` +
        (outputName !== options.output && options.output ? ` (resolved from '${options.output}')` : "") +
        `, input '${edited.input.name}' [${(edited.input.dims ?? []).map((d) => d ?? "?").join(" x ")}], ` +
        `${edited.keptNodes} of ${edited.totalNodes} nodes kept`,
    );

    const started = await startSession(
      edited.model,
      await chooseProvider(options.provider ?? "auto", log),
      options.provider === "webgpu",
      options.threads ?? defaultThreads(),
      source,
      log,
    );
    const { ort, session, provider, detail } = started;
    log(`backbone: execution provider ${detail}`);
    return new OnnxBackbone(
      ort,
      session,
      modelHash,
      outputName,
      edited.input.name,
      edited.input.dims,
      provider,
      detail,
      caffeNaming,
    );
  }

  /** The fixed input height/width the model declares, or undefined where it is symbolic. */
  get inputSize(): { height?: number; width?: number; channels?: number } {
    const d = this.inputDims ?? [];
    const num = (x: OnnxDim | undefined) => (typeof x === "number" && x > 0 ? x : undefined);
    return { channels: num(d[1]), height: num(d[2]), width: num(d[3]) };
  }

  /** Width of one flattened output row, known after the first {@link run}. */
  get featureDim(): number | undefined {
    return this.#featureDim;
  }

  /**
   * Runs `n` images (`input` = NCHW float32, `n x 3 x size x size`) and returns the exposed output
   * flattened to `[n x dim]`.
   */
  async run(input: Float32Array, n: number, size: number): Promise<HostMatrix> {
    const per = 3 * size * size;
    if (input.length < n * per) {
      throw new ShapeError(`input of ${input.length} floats is smaller than ${fmtShape([n, 3, size, size])}`);
    }
    const { height, width } = this.inputSize;
    if ((height && height !== size) || (width && width !== size)) {
      throw new UserError((n) =>
        `the model expects ${height}x${width} inputs but preprocessing makes ${size}x${size}; ` +
        `set ${n("preprocess.crop")} to ${height}`
      );
    }
    const data = input.length === n * per ? input : input.subarray(0, n * per);
    const tensor = new this.ort.Tensor("float32", data, [n, 3, size, size]);
    let out;
    try {
      const result = await this.session.run({ [this.inputName]: tensor });
      out = result[this.outputName];
    } catch (e) {
      throw new UserError(
        `onnxruntime failed running the backbone (${this.providerDetail}): ${(e as Error).message}`,
      );
    } finally {
      tensor.dispose();
    }
    if (out.type !== "float32") {
      throw new UserError((n) =>
        `output '${this.outputName}' holds ${out.type} values, not float32 (a quantised model?); ` +
        `set ${n("output")} to a float tensor, e.g. the DequantizeLinear output after pool5`
      );
    }
    const dims = out.dims as readonly number[];
    if (dims[0] !== n) {
      throw new ShapeError(
        `output '${this.outputName}' has shape ${fmtShape(dims as number[])}, not [${n} x ...]`,
      );
    }
    const dim = dims.slice(1).reduce((a, b) => a * b, 1);
    if (this.#featureDim !== undefined && this.#featureDim !== dim) {
      throw new ShapeError(`output width changed from ${this.#featureDim} to ${dim}`);
    }
    this.#featureDim = dim;
    const values = out.data as Float32Array;
    const copy = new Float32Array(values.subarray(0, n * dim));
    out.dispose();
    return { rows: n, cols: dim, data: copy };
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}
