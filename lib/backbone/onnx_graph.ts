/**
 * Reading and editing ONNX model files without onnxruntime: list a model's inputs, outputs and
 * inner tensors, and rewrite the graph so an inner tensor (GoogLeNet's pool5) becomes its only output.
 *
 * The edit works on the protobuf wire format and copies every field it does not change byte for
 * byte (weights are never decoded). It:
 * - replaces the graph outputs with the requested tensor (a `ValueInfoProto` with only a name;
 *   onnxruntime infers its type and shape),
 * - drops the nodes, initializers and inputs the new output does not depend on (the classifier
 *   after pool5, including the Caffe2 export's `Reshape` to a fixed `[1, 1024]`, which would break
 *   batches larger than 1),
 * - makes the batch dimension of the image input symbolic when the file fixes it to 1 (the ONNX Model
 *   Zoo GoogLeNet declares `data_0: [1, 3, 224, 224]`), so batches of any size run,
 * - drops `value_info` (optional shape hints that may fix the batch to 1).
 *
 * Field numbers follow onnx.proto (ModelProto.graph = 7, GraphProto.node = 1, .initializer = 5,
 * .input = 11, .output = 12, .value_info = 13; NodeProto.input = 1, .output = 2, .name = 3,
 * .op_type = 4, .attribute = 5; TensorProto.name = 8, .data_location = 14).
 * @module
 */
import { UserError } from "../errors.ts";
import {
  fieldString,
  ProtoDecodeError,
  type ProtoField,
  ProtoWriter,
  readFields,
  readVarintSigned,
} from "./protobuf.ts";

/** One dimension of a declared tensor shape: a size, a symbolic name, or unknown. */
export type OnnxDim = number | string | null;

/** A graph input or output as the file declares it. */
export interface OnnxValueInfo {
  /** Tensor name. */
  name: string;
  /** ONNX TensorProto.DataType (1 = float32), or 0 when not declared. */
  elemType: number;
  /** Declared dimensions; `undefined` when the file gives no shape. */
  dims?: OnnxDim[];
}

/** One node of the graph. */
export interface OnnxNode {
  /** Node name (may be empty). */
  name: string;
  /** Operator, e.g. "Conv". */
  opType: string;
  /** Input tensor names. */
  inputs: string[];
  /** Output tensor names. */
  outputs: string[];
  /** The node carries a subgraph (If, Loop, Scan), which may read outer tensors implicitly. */
  hasSubgraph: boolean;
}

/** What {@link readOnnxModel} finds in a model file. */
export interface OnnxModelInfo {
  /** ONNX IR version of the file. */
  irVersion: number;
  /** Opset version by domain ("" = the default ONNX domain). */
  opsets: Map<string, number>;
  /** Graph inputs that are not initializers: the tensors a caller must feed. */
  inputs: OnnxValueInfo[];
  /** Graph outputs. */
  outputs: OnnxValueInfo[];
  /** Nodes in file order. */
  nodes: OnnxNode[];
  /** Names of the stored weights. */
  initializerNames: Set<string>;
  /** Some initializer keeps its data in an external file. */
  hasExternalData: boolean;
}

const MODEL_GRAPH = 7, MODEL_IR_VERSION = 1, MODEL_OPSET = 8;
const GRAPH_NODE = 1, GRAPH_INITIALIZER = 5, GRAPH_INPUT = 11, GRAPH_OUTPUT = 12, GRAPH_VALUE_INFO = 13;
const GRAPH_SPARSE_INITIALIZER = 15;
const NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5;
const ATTR_TYPE = 20, ATTR_G = 6, ATTR_GRAPHS = 11;
const ATTR_TYPE_GRAPH = 5, ATTR_TYPE_GRAPHS = 10;
const TENSOR_NAME = 8, TENSOR_DATA_LOCATION = 14, TENSOR_DATA_LOCATION_EXTERNAL = 1;
const SPARSE_VALUES = 1;
const VALUE_INFO_NAME = 1, VALUE_INFO_TYPE = 2;
const TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2;
const SHAPE_DIM = 1, DIM_VALUE = 1, DIM_PARAM = 2;

function parseValueInfo(buf: Uint8Array): OnnxValueInfo {
  let name = "", elemType = 0;
  let dims: OnnxDim[] | undefined;
  for (const f of readFields(buf)) {
    if (f.field === VALUE_INFO_NAME) name = fieldString(f);
    else if (f.field === VALUE_INFO_TYPE) {
      for (const t of readFields(f.bytes)) {
        if (t.field !== TYPE_TENSOR) continue;
        for (const tt of readFields(t.bytes)) {
          if (tt.field === TENSOR_TYPE_ELEM) elemType = tt.varint;
          else if (tt.field === TENSOR_TYPE_SHAPE) {
            dims = [];
            for (const d of readFields(tt.bytes)) {
              if (d.field !== SHAPE_DIM) continue;
              let dim: OnnxDim = null;
              for (const x of readFields(d.bytes)) {
                if (x.field === DIM_VALUE) dim = readVarintSigned(x.varint);
                else if (x.field === DIM_PARAM) dim = fieldString(x);
              }
              dims.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, elemType, dims };
}

/** Encodes a ValueInfoProto for a tensor (name, element type, dims). */
export function encodeValueInfo(v: OnnxValueInfo): Uint8Array {
  const w = new ProtoWriter().string(VALUE_INFO_NAME, v.name);
  if (v.elemType === 0 && v.dims === undefined) return w.finish();
  const tensor = new ProtoWriter();
  if (v.elemType) tensor.varint(TENSOR_TYPE_ELEM, v.elemType);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims) {
      const dim = new ProtoWriter();
      if (typeof d === "number") dim.varint(DIM_VALUE, d);
      else if (typeof d === "string") dim.string(DIM_PARAM, d);
      shape.bytes(SHAPE_DIM, dim.finish());
    }
    tensor.bytes(TENSOR_TYPE_SHAPE, shape.finish());
  }
  return w.bytes(VALUE_INFO_TYPE, new ProtoWriter().bytes(TYPE_TENSOR, tensor.finish()).finish()).finish();
}

function parseNode(buf: Uint8Array): OnnxNode {
  const node: OnnxNode = { name: "", opType: "", inputs: [], outputs: [], hasSubgraph: false };
  for (const f of readFields(buf)) {
    if (f.field === NODE_INPUT) node.inputs.push(fieldString(f));
    else if (f.field === NODE_OUTPUT) node.outputs.push(fieldString(f));
    else if (f.field === NODE_NAME) node.name = fieldString(f);
    else if (f.field === NODE_OP_TYPE) node.opType = fieldString(f);
    else if (f.field === NODE_ATTRIBUTE) {
      for (const a of readFields(f.bytes)) {
        if (
          a.field === ATTR_G || a.field === ATTR_GRAPHS ||
          (a.field === ATTR_TYPE && (a.varint === ATTR_TYPE_GRAPH || a.varint === ATTR_TYPE_GRAPHS))
        ) node.hasSubgraph = true;
      }
    }
  }
  return node;
}

/** Name of a TensorProto and whether its data lives in an external file. */
function parseTensorHeader(buf: Uint8Array): { name: string; external: boolean } {
  let name = "", external = false;
  for (const f of readFields(buf)) {
    if (f.field === TENSOR_NAME) name = fieldString(f);
    else if (f.field === TENSOR_DATA_LOCATION) external = f.varint === TENSOR_DATA_LOCATION_EXTERNAL;
  }
  return { name, external };
}

function sparseInitializerName(buf: Uint8Array): string {
  for (const f of readFields(buf)) if (f.field === SPARSE_VALUES) return parseTensorHeader(f.bytes).name;
  return "";
}

interface ParsedGraph {
  modelFields: ProtoField[];
  graphFields: ProtoField[];
  info: OnnxModelInfo;
  /** Per graph field index: the parsed node, initializer name or value info. */
  nodeAt: Map<number, OnnxNode>;
  initializerAt: Map<number, string>;
  inputAt: Map<number, OnnxValueInfo>;
}

function parseModel(bytes: Uint8Array, source: string): ParsedGraph {
  try {
    const modelFields = [...readFields(bytes)];
    const graphField = modelFields.find((f) => f.field === MODEL_GRAPH && f.wireType === 2);
    if (!graphField) throw new ProtoDecodeError("no graph");
    const opsets = new Map<string, number>();
    let irVersion = 0;
    for (const f of modelFields) {
      if (f.field === MODEL_IR_VERSION) irVersion = f.varint;
      else if (f.field === MODEL_OPSET && f.wireType === 2) {
        let domain = "", version = 0;
        for (const o of readFields(f.bytes)) {
          if (o.field === 1) domain = fieldString(o);
          else if (o.field === 2) version = o.varint;
        }
        opsets.set(domain, version);
      }
    }
    const graphFields = [...readFields(graphField.bytes)];
    const nodeAt = new Map<number, OnnxNode>();
    const initializerAt = new Map<number, string>();
    const inputAt = new Map<number, OnnxValueInfo>();
    const declaredInputs: OnnxValueInfo[] = [];
    const outputs: OnnxValueInfo[] = [];
    const initializerNames = new Set<string>();
    let hasExternalData = false;
    graphFields.forEach((f, i) => {
      if (f.wireType !== 2) return;
      if (f.field === GRAPH_NODE) nodeAt.set(i, parseNode(f.bytes));
      else if (f.field === GRAPH_INITIALIZER) {
        const t = parseTensorHeader(f.bytes);
        initializerAt.set(i, t.name);
        initializerNames.add(t.name);
        hasExternalData ||= t.external;
      } else if (f.field === GRAPH_SPARSE_INITIALIZER) {
        const name = sparseInitializerName(f.bytes);
        initializerAt.set(i, name);
        initializerNames.add(name);
      } else if (f.field === GRAPH_INPUT) {
        const v = parseValueInfo(f.bytes);
        inputAt.set(i, v);
        declaredInputs.push(v);
      } else if (f.field === GRAPH_OUTPUT) outputs.push(parseValueInfo(f.bytes));
    });
    const info: OnnxModelInfo = {
      irVersion,
      opsets,
      inputs: declaredInputs.filter((v) => !initializerNames.has(v.name)),
      outputs,
      nodes: [...nodeAt.values()],
      initializerNames,
      hasExternalData,
    };
    return { modelFields, graphFields, info, nodeAt, initializerAt, inputAt };
  } catch (e) {
    if (e instanceof ProtoDecodeError) {
      throw new UserError(
        `${source} is not a valid ONNX model file (${e.message}). Check the path and the file.`,
      );
    }
    throw e;
  }
}

/** Reads the structure of an ONNX model (inputs, outputs, nodes) without decoding its weights. */
export function readOnnxModel(bytes: Uint8Array, source = "the model"): OnnxModelInfo {
  return parseModel(bytes, source).info;
}

/** Every tensor name a node produces, in graph order (candidates for an exposed output). */
export function tensorNames(info: OnnxModelInfo): string[] {
  return info.nodes.flatMap((n) => n.outputs.filter((o) => o !== ""));
}

const POOL_OPS = new Set(["GlobalAveragePool", "AveragePool", "ReduceMean"]);

/**
 * Resolves a requested output name. An exact tensor name wins. The alias `pool5` then matches the
 * Caffe/ONNX Model Zoo naming (`pool5/7x7_s1`, `pool5/7x7_s1_1`, ... preferring the pooling node's own
 * output over a dropout's in-place copy), and last the output of the graph's last average-pooling node
 * (GlobalAveragePool, AveragePool or ReduceMean: torchvision's `avgpool` in an exported GoogLeNet).
 * Throws a UserError listing the available names when nothing matches.
 */
export function resolveOutputName(info: OnnxModelInfo, requested: string, source = "the model"): string {
  const names = tensorNames(info);
  if (names.includes(requested) || info.inputs.some((i) => i.name === requested)) return requested;
  if (requested === "pool5") {
    const pattern = /^pool5\/7x7_s1(_\d+)?$/;
    const byName = info.nodes.filter((n) => n.outputs.some((o) => pattern.test(o)));
    const pooled = byName.find((n) => POOL_OPS.has(n.opType)) ?? byName[0];
    if (pooled) return pooled.outputs.find((o) => pattern.test(o))!;
    const lastPool = info.nodes.findLast((n) => POOL_OPS.has(n.opType));
    if (lastPool) return lastPool.outputs[0];
  }
  throw new UserError((n) =>
    `${source} has no tensor named '${requested}'. Available tensor names: ${summarizeNames(names)}. ` +
    `Set ${n("output")} to one of them (or 'pool5' for GoogLeNet's pooled 1024-d feature).`
  );
}

function summarizeNames(names: string[], head = 20, tail = 40): string {
  if (names.length <= head + tail) return names.join(", ");
  return `${names.slice(0, head).join(", ")}, ... (${names.length - head - tail} more) ..., ` +
    names.slice(-tail).join(", ");
}

/** Options for {@link exposeOutput}. */
export interface ExposeOptions {
  /**
   * Name given to the image input's batch dimension when the file fixes it to 1 (default "batch").
   * @default "batch"
   */
  batchDimName?: string;
  /**
   * Keep nodes the output does not need (default false: prune them).
   * @default false
   */
  keepUnusedNodes?: boolean;
}

/** What {@link exposeOutput} did. */
export interface ExposeResult {
  /** The edited model file. */
  model: Uint8Array;
  /** The image input (after the batch-dimension edit). */
  input: OnnxValueInfo;
  /** Nodes kept / in the original graph. */
  keptNodes: number;
  /** Nodes in the graph before the edit. */
  totalNodes: number;
}

/**
 * Rewrites `bytes` so that tensor `output` (an exact name; resolve aliases first) is the graph's only
 * output, pruning what it does not depend on and freeing the batch dimension of the input.
 */
export function exposeOutput(
  bytes: Uint8Array,
  output: string,
  options: ExposeOptions = {},
  source = "the model",
): ExposeResult {
  const parsed = parseModel(bytes, source);
  const { info, graphFields, nodeAt, initializerAt, inputAt } = parsed;
  if (info.hasExternalData) {
    throw new UserError(
      `${source} keeps its weights in external data files, which this loader does not read. ` +
        `Save it as one file (onnx.save_model(model, path, save_as_external_data=False)).`,
    );
  }
  if (info.inputs.length !== 1) {
    throw new UserError(
      `${source} has ${info.inputs.length} inputs (${info.inputs.map((i) => i.name).join(", ")}); ` +
        `an image backbone must have exactly one (the image batch).`,
    );
  }
  if (!tensorNames(info).includes(output) && info.inputs[0].name !== output) {
    resolveOutputName(info, output, source); // throws with the list of names
  }

  // Backward reachability from the output over the node list.
  const producer = new Map<string, number>();
  for (const [i, n] of nodeAt) for (const o of n.outputs) producer.set(o, i);
  const pruning = !options.keepUnusedNodes && ![...nodeAt.values()].some((n) => n.hasSubgraph);
  const keep = new Set<number>();
  const needed = new Set<string>([output]);
  if (pruning) {
    const stack = [output];
    while (stack.length) {
      const t = stack.pop()!;
      const p = producer.get(t);
      if (p === undefined || keep.has(p)) continue;
      keep.add(p);
      for (const inp of nodeAt.get(p)!.inputs) {
        if (inp && !needed.has(inp)) {
          needed.add(inp);
          stack.push(inp);
        }
      }
    }
  } else {
    for (const [i, n] of nodeAt) {
      keep.add(i);
      for (const inp of n.inputs) needed.add(inp);
    }
  }

  const imageInput = info.inputs[0];
  const freed: OnnxValueInfo = { ...imageInput };
  if (imageInput.dims && imageInput.dims.length > 0 && imageInput.dims[0] === 1) {
    freed.dims = [options.batchDimName ?? "batch", ...imageInput.dims.slice(1)];
  }

  const graph = new ProtoWriter();
  graphFields.forEach((f, i) => {
    if (nodeAt.has(i)) {
      if (keep.has(i)) graph.raw(f.raw);
    } else if (initializerAt.has(i)) {
      if (needed.has(initializerAt.get(i)!)) graph.raw(f.raw);
    } else if (inputAt.has(i)) {
      const v = inputAt.get(i)!;
      if (v.name === imageInput.name) graph.bytes(GRAPH_INPUT, encodeValueInfo(freed));
      else if (needed.has(v.name)) graph.raw(f.raw);
    } else if (f.field === GRAPH_OUTPUT || f.field === GRAPH_VALUE_INFO) {
      // replaced below / dropped
    } else {
      graph.raw(f.raw);
    }
  });
  graph.bytes(GRAPH_OUTPUT, encodeValueInfo({ name: output, elemType: 0 }));

  const model = new ProtoWriter();
  for (const f of parsed.modelFields) {
    if (f.field === MODEL_GRAPH && f.wireType === 2) model.bytes(MODEL_GRAPH, graph.finish());
    else model.raw(f.raw);
  }
  return { model: model.finish(), input: freed, keptNodes: keep.size, totalNodes: nodeAt.size };
}
