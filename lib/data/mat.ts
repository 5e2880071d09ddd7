/**
 * A reader for MATLAB 5-7 MAT-files (the format `save` writes by default, not the HDF5-based v7.3),
 * enough for dataset annotation files such as Cars196's `cars_annos.mat`: numeric arrays, char
 * arrays, cell arrays and struct arrays, compressed (miCOMPRESSED, zlib) or not, little- or big-endian.
 * Sparse matrices and objects are rejected with a clear error.
 *
 * Format: a 128-byte header (text, subsystem offset, version, endian indicator "IM"), then data
 * elements, each an 8-byte tag (type, byte count) or a 4-byte "small element" tag with up to 4 bytes of
 * data, padded to 8 bytes; a miMATRIX element holds array flags (class), dimensions, the name and the
 * class's data. Arrays are column-major.
 * @module
 */
import { UserError } from "../errors.ts";

/** A value read from a MAT-file. Element order is MATLAB's (column-major). */
export type MatValue =
  | { kind: "numeric"; dims: number[]; data: Float64Array }
  | { kind: "char"; dims: number[]; text: string }
  | { kind: "cell"; dims: number[]; items: MatValue[] }
  | { kind: "struct"; dims: number[]; fieldNames: string[]; items: Record<string, MatValue>[] };

const MI_INT8 = 1, MI_UINT8 = 2, MI_INT16 = 3, MI_UINT16 = 4, MI_INT32 = 5, MI_UINT32 = 6;
const MI_SINGLE = 7, MI_DOUBLE = 9, MI_INT64 = 12, MI_UINT64 = 13, MI_MATRIX = 14, MI_COMPRESSED = 15;
const MI_UTF8 = 16, MI_UTF16 = 17, MI_UTF32 = 18;
const MX_CELL = 1, MX_STRUCT = 2, MX_OBJECT = 3, MX_CHAR = 4, MX_SPARSE = 5;

class MatError extends Error {}

interface Element {
  type: number;
  data: DataView;
}

class Reader {
  pos = 0;
  constructor(readonly view: DataView, readonly le: boolean) {}

  get done(): boolean {
    return this.pos >= this.view.byteLength;
  }

  u32(at: number): number {
    return this.view.getUint32(at, this.le);
  }

  /** Reads the next data element (tag + data), advancing past its padding. */
  element(): Element {
    if (this.pos + 4 > this.view.byteLength) throw new MatError("truncated element tag");
    const first = this.u32(this.pos);
    const small = first >>> 16;
    if (small !== 0) {
      // Small data element: type in the low 16 bits, byte count in the high 16 bits, data inline.
      const type = first & 0xffff;
      const data = new DataView(this.view.buffer, this.view.byteOffset + this.pos + 4, small);
      this.pos += 8;
      return { type, data };
    }
    const type = first;
    const n = this.u32(this.pos + 4);
    const start = this.pos + 8;
    if (start + n > this.view.byteLength) throw new MatError(`element of ${n} bytes runs past the end`);
    const data = new DataView(this.view.buffer, this.view.byteOffset + start, n);
    // miCOMPRESSED elements are not padded; all others are padded to 8 bytes.
    this.pos = type === MI_COMPRESSED ? start + n : start + Math.ceil(n / 8) * 8;
    return { type, data };
  }
}

function numbers(el: Element, le: boolean): Float64Array {
  const d = el.data;
  const size: Record<number, number> = {
    [MI_INT8]: 1,
    [MI_UINT8]: 1,
    [MI_UTF8]: 1,
    [MI_INT16]: 2,
    [MI_UINT16]: 2,
    [MI_UTF16]: 2,
    [MI_INT32]: 4,
    [MI_UINT32]: 4,
    [MI_UTF32]: 4,
    [MI_SINGLE]: 4,
    [MI_DOUBLE]: 8,
    [MI_INT64]: 8,
    [MI_UINT64]: 8,
  };
  const s = size[el.type];
  if (!s) throw new MatError(`unsupported numeric data type ${el.type}`);
  const n = Math.floor(d.byteLength / s);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * s;
    switch (el.type) {
      case MI_INT8:
        out[i] = d.getInt8(o);
        break;
      case MI_UINT8:
      case MI_UTF8:
        out[i] = d.getUint8(o);
        break;
      case MI_INT16:
        out[i] = d.getInt16(o, le);
        break;
      case MI_UINT16:
      case MI_UTF16:
        out[i] = d.getUint16(o, le);
        break;
      case MI_INT32:
        out[i] = d.getInt32(o, le);
        break;
      case MI_UINT32:
      case MI_UTF32:
        out[i] = d.getUint32(o, le);
        break;
      case MI_SINGLE:
        out[i] = d.getFloat32(o, le);
        break;
      case MI_DOUBLE:
        out[i] = d.getFloat64(o, le);
        break;
      case MI_INT64:
        out[i] = Number(d.getBigInt64(o, le));
        break;
      case MI_UINT64:
        out[i] = Number(d.getBigUint64(o, le));
        break;
    }
  }
  return out;
}

function bytesOf(el: Element): Uint8Array {
  return new Uint8Array(el.data.buffer, el.data.byteOffset, el.data.byteLength);
}

function charText(el: Element, le: boolean, dims: number[]): string {
  let codes: number[];
  if (el.type === MI_UTF8 || el.type === MI_UINT8 || el.type === MI_INT8) {
    const s = new TextDecoder().decode(bytesOf(el));
    codes = [...s].map((c) => c.codePointAt(0)!);
  } else {
    codes = Array.from(numbers(el, le));
  }
  // A 2-D char array is column-major; a row vector (1 x n) reads straight through.
  const rows = dims[0] ?? 1;
  if (rows <= 1) return String.fromCodePoint(...codes);
  const cols = Math.floor(codes.length / rows);
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    let line = "";
    for (let c = 0; c < cols; c++) line += String.fromCodePoint(codes[c * rows + r]);
    out.push(line);
  }
  return out.join("\n");
}

function readMatrix(el: Element, le: boolean): { name: string; value: MatValue } {
  if (el.data.byteLength === 0) {
    return { name: "", value: { kind: "numeric", dims: [0, 0], data: new Float64Array() } };
  }
  const r = new Reader(el.data, le);
  const flags = r.element();
  const cls = flags.data.getUint32(0, le) & 0xff;
  const dims = Array.from(numbers(r.element(), le));
  const name = new TextDecoder().decode(bytesOf(r.element()));
  const count = dims.reduce((a, b) => a * b, 1);
  if (cls === MX_CELL) {
    const items: MatValue[] = [];
    for (let i = 0; i < count; i++) items.push(readMatrix(r.element(), le).value);
    return { name, value: { kind: "cell", dims, items } };
  }
  if (cls === MX_STRUCT) {
    const nameLen = numbers(r.element(), le)[0];
    const raw = bytesOf(r.element());
    const fieldNames: string[] = [];
    for (let o = 0; o + nameLen <= raw.length; o += nameLen) {
      fieldNames.push(new TextDecoder().decode(raw.subarray(o, o + nameLen)).replace(/\0.*$/s, ""));
    }
    const items: Record<string, MatValue>[] = [];
    for (let i = 0; i < count; i++) {
      const item: Record<string, MatValue> = {};
      for (const f of fieldNames) item[f] = readMatrix(r.element(), le).value;
      items.push(item);
    }
    return { name, value: { kind: "struct", dims, fieldNames, items } };
  }
  if (cls === MX_CHAR) {
    const text = r.done ? "" : charText(r.element(), le, dims);
    return { name, value: { kind: "char", dims, text } };
  }
  if (cls === MX_SPARSE || cls === MX_OBJECT) {
    throw new MatError(`unsupported array class ${cls} (sparse or object)`);
  }
  const data = r.done ? new Float64Array() : numbers(r.element(), le);
  return { name, value: { kind: "numeric", dims, data } };
}

async function inflate(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Reads every variable of a MAT-file (v5-v7), by name. */
export async function readMat(bytes: Uint8Array, source = "MAT-file"): Promise<Map<string, MatValue>> {
  const fail = (why: string) =>
    new UserError(`${source} is not a MATLAB 5-7 MAT-file this reader handles: ${why}`);
  if (bytes.length < 128) throw fail("shorter than the 128-byte header");
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 116));
  if (head.startsWith("MATLAB 7.3") || (bytes[0] === 0x89 && bytes[1] === 0x48)) {
    throw fail("it is a v7.3 (HDF5) file; re-save it in MATLAB/Octave with save(..., '-v7') or export a CSV");
  }
  const endian = String.fromCharCode(bytes[126], bytes[127]);
  if (endian !== "IM" && endian !== "MI") throw fail(`bad endian indicator '${endian}'`);
  const le = endian === "IM";
  const out = new Map<string, MatValue>();
  try {
    const r = new Reader(new DataView(bytes.buffer, bytes.byteOffset + 128, bytes.length - 128), le);
    while (!r.done) {
      let el = r.element();
      if (el.type === MI_COMPRESSED) {
        const inner = await inflate(bytesOf(el));
        el = new Reader(new DataView(inner.buffer, inner.byteOffset, inner.byteLength), le).element();
      }
      if (el.type !== MI_MATRIX) continue;
      const { name, value } = readMatrix(el, le);
      out.set(name, value);
    }
  } catch (e) {
    if (e instanceof MatError || e instanceof RangeError || e instanceof TypeError) {
      throw fail((e as Error).message);
    }
    throw e;
  }
  return out;
}

/** Reads the `relative_im_path` and `class` of every annotation, and the class names, of cars_annos.mat. */
export async function readCarsAnnosMat(
  bytes: Uint8Array,
  source: string,
): Promise<{ annotations: { path: string; cls: number }[]; classNames?: string[] }> {
  const vars = await readMat(bytes, source);
  const annos = vars.get("annotations");
  if (
    !annos || annos.kind !== "struct" || !annos.fieldNames.includes("relative_im_path") ||
    !annos.fieldNames.includes("class")
  ) {
    throw new UserError(
      `${source} has no 'annotations' struct array with fields relative_im_path and class ` +
        `(variables found: ${[...vars.keys()].join(", ") || "none"})`,
    );
  }
  const annotations = annos.items.map((item, i) => {
    const p = item.relative_im_path, c = item.class;
    if (p?.kind !== "char" || c?.kind !== "numeric" || c.data.length < 1) {
      throw new UserError(`${source}: annotation ${i + 1} lacks a relative_im_path string or a class number`);
    }
    return { path: p.text, cls: c.data[0] };
  });
  const names = vars.get("class_names");
  const classNames = names?.kind === "cell"
    ? names.items.map((v, i) => (v.kind === "char" ? v.text : `class ${i + 1}`))
    : undefined;
  return { annotations, classNames };
}
