/**
 * The protobuf wire format, as much as ONNX needs: a field reader that hands out each field's tag,
 * wire type and raw bytes (so unknown fields can be copied through untouched), and a writer.
 *
 * Only wire types 0 (varint), 1 (64-bit), 2 (length-delimited) and 5 (32-bit) exist in ONNX files;
 * groups (3, 4) are rejected. Varints are read as JS numbers, exact up to 2^53, which covers every
 * size, dimension and enum ONNX stores; negative int64 values (10-byte varints, such as -1 in a Reshape
 * shape) are read and written exactly through BigInt.
 *
 * @example
 * ```ts
 * import { ProtoWriter, readFields } from "./protobuf.ts";
 * const w = new ProtoWriter().string(1, "x").varint(2, 7);
 * for (const f of readFields(w.finish())) console.log(f.field, f.wireType);
 * ```
 * @module
 */

/** One field of a message as it sits on the wire. */
export interface ProtoField {
  /** Field number. */
  field: number;
  /** Wire type: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32. */
  wireType: 0 | 1 | 2 | 5;
  /** For wire type 0: the value; for others: 0. */
  varint: number;
  /** For wire type 2: the payload; for 1 and 5: the 8 or 4 raw bytes. Empty for varints. */
  bytes: Uint8Array;
  /** The whole field (tag included) as it appears in the message, for copying through. */
  raw: Uint8Array;
}

/** The bytes are not a valid protobuf message. */
export class ProtoDecodeError extends Error {
  override name = "ProtoDecodeError";
}

function readVarintAt(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  const start = pos;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) throw new ProtoDecodeError("truncated varint");
    const b = buf[pos++];
    if (i === 9) return [readLongVarint(buf, start), pos];
    result += (b & 0x7f) * mul;
    if (b < 0x80) return [result, pos];
    mul *= 128;
  }
  throw new ProtoDecodeError("varint longer than 10 bytes");
}

/** A 10-byte varint is a negative int64 (two's complement); read it exactly with BigInt. */
function readLongVarint(buf: Uint8Array, start: number): number {
  let v = 0n;
  for (let i = 9; i >= 0; i--) v = (v << 7n) | BigInt(buf[start + i] & 0x7f);
  return Number(BigInt.asIntN(64, v));
}

/**
 * A varint as a signed int64. Negative int64 values (10-byte varints) are already read as negative
 * numbers; this is the identity on everything else and kept for readability at call sites.
 */
export function readVarintSigned(value: number): number {
  return value >= 2 ** 63 ? value - 2 ** 64 : value;
}

/** Iterates over the fields of one message. */
export function* readFields(buf: Uint8Array): Generator<ProtoField> {
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, p1] = readVarintAt(buf, pos);
    pos = p1;
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (field === 0) throw new ProtoDecodeError("field number 0");
    let varint = 0;
    let bytes: Uint8Array = buf.subarray(pos, pos);
    if (wireType === 0) {
      [varint, pos] = readVarintAt(buf, pos);
    } else if (wireType === 1 || wireType === 5) {
      const n = wireType === 1 ? 8 : 4;
      if (pos + n > buf.length) throw new ProtoDecodeError("truncated fixed-width field");
      bytes = buf.subarray(pos, pos + n);
      pos += n;
    } else if (wireType === 2) {
      const [len, p2] = readVarintAt(buf, pos);
      if (p2 + len > buf.length) {
        throw new ProtoDecodeError(`field ${field} runs past the end of its message`);
      }
      bytes = buf.subarray(p2, p2 + len);
      pos = p2 + len;
    } else {
      throw new ProtoDecodeError(`unsupported wire type ${wireType} (field ${field})`);
    }
    yield { field, wireType, varint, bytes, raw: buf.subarray(start, pos) };
  }
}

/** Reads a repeated varint field that may be packed (wire type 2) or not (wire type 0). */
export function readPackedVarints(f: ProtoField, out: number[] = []): number[] {
  if (f.wireType === 0) {
    out.push(f.varint);
    return out;
  }
  let pos = 0;
  while (pos < f.bytes.length) {
    const [v, p] = readVarintAt(f.bytes, pos);
    out.push(v);
    pos = p;
  }
  return out;
}

/** Decodes a length-delimited field as UTF-8. */
export function fieldString(f: ProtoField): string {
  return decoder.decode(f.bytes);
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Builds one message; nested messages are written from their finished bytes. */
export class ProtoWriter {
  #chunks: Uint8Array[] = [];
  #scratch: number[] = [];
  #length = 0;

  #flushScratch(): void {
    if (this.#scratch.length) {
      this.#chunks.push(Uint8Array.from(this.#scratch));
      this.#length += this.#scratch.length;
      this.#scratch = [];
    }
  }

  #varintRaw(value: number): void {
    if (!Number.isInteger(value)) throw new RangeError(`varint ${value} is not an integer`);
    if (value < 0) {
      // Negative int64 values are written as their 64-bit two's complement (10 bytes), exactly.
      let big = BigInt.asUintN(64, BigInt(value));
      for (let i = 0; i < 9; i++) {
        this.#scratch.push(Number(big & 0x7fn) | 0x80);
        big >>= 7n;
      }
      this.#scratch.push(Number(big));
      return;
    }
    let v = value;
    while (v >= 128) {
      this.#scratch.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    this.#scratch.push(v);
  }

  #tag(field: number, wireType: number): void {
    this.#varintRaw(field * 8 + wireType);
  }

  /** Writes an integer field (int32, int64, enum, bool) as a varint. */
  varint(field: number, value: number): this {
    this.#tag(field, 0);
    this.#varintRaw(value);
    return this;
  }

  /** Writes a 32-bit float field (wire type 5). */
  float(field: number, value: number): this {
    this.#tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#scratch.push(...b);
    return this;
  }

  /** Writes a length-delimited field from raw bytes (a nested message, `bytes`, or packed data). */
  bytes(field: number, data: Uint8Array): this {
    this.#tag(field, 2);
    this.#varintRaw(data.length);
    this.#flushScratch();
    this.#chunks.push(data);
    this.#length += data.length;
    return this;
  }

  /** Writes a UTF-8 string field. */
  string(field: number, value: string): this {
    return this.bytes(field, encoder.encode(value));
  }

  /** Writes a packed repeated varint field (int64s such as dims or ints). */
  packedVarints(field: number, values: readonly number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.#varintRaw(v);
    return this.bytes(field, inner.finish());
  }

  /** Writes a packed repeated float field. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const f = Float32Array.from(values);
    return this.bytes(field, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
  }

  /** Copies an already-encoded field (tag included) through unchanged. */
  raw(fieldBytes: Uint8Array): this {
    this.#flushScratch();
    this.#chunks.push(fieldBytes);
    this.#length += fieldBytes.length;
    return this;
  }

  /** The message's bytes. */
  finish(): Uint8Array {
    this.#flushScratch();
    const out = new Uint8Array(this.#length);
    let off = 0;
    for (const c of this.#chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
