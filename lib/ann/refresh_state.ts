/**
 * What a FANNG refresh starts from, as bytes: the build order and the candidate lists of the last build or
 * refresh (lib/ann/build.ts `RefreshState`). A training checkpoint stores them beside the graph so that a
 * resumed run refreshes from exactly what the uninterrupted run would have (docs/reliability.md).
 *
 * Layout (little-endian u32 words): magic "FRS1", n, list width (0: no lists), compared flag (0/1), then
 * order [n], lists [n x width], compared [n x 2] when flagged. The checkpoint's CRC covers the bytes.
 * @module
 */
import { GpuBuffer } from "../gpu/buffer.ts";
import type { Gpu } from "../gpu/device.ts";
import { UserError } from "../errors.ts";
import { type RefreshState, refreshState } from "./build.ts";
import { NO_VERTEX } from "./graph.ts";

const MAGIC = 0x31535246; // "FRS1"
const HEADER_WORDS = 4;

/** Encodes `state` (reads its lists back from the GPU). */
export async function encodeRefreshState(state: RefreshState): Promise<Uint8Array> {
  const n = state.order.length;
  const width = state.lists ? state.lists.cols : 0;
  const lists = state.lists ? await state.lists.read() : new Uint32Array(0);
  const compared = state.compared ?? new Uint32Array(0);
  const words = new Uint32Array(HEADER_WORDS + n + lists.length + compared.length);
  words.set([MAGIC, n, width, state.compared ? 1 : 0]);
  words.set(state.order, HEADER_WORDS);
  words.set(lists, HEADER_WORDS + n);
  words.set(compared, HEADER_WORDS + n + lists.length);
  return new Uint8Array(words.buffer);
}

/** Decodes bytes from {@link encodeRefreshState} for an index of `n` points; `source` names them in errors. */
export function decodeRefreshState(gpu: Gpu, bytes: Uint8Array, n: number, source: string): RefreshState {
  const bad = (why: string) => new UserError(`${source} is not a valid FANNG refresh state: ${why}`);
  if (bytes.byteLength % 4 !== 0 || bytes.byteLength < HEADER_WORDS * 4) throw bad("too short");
  const words = new Uint32Array(bytes.slice().buffer);
  const [magic, count, width, flagged] = words;
  if (magic !== MAGIC) throw bad("wrong magic number");
  if (count !== n) throw bad(`it covers ${count} points, the graph ${n}`);
  const comparedWords = flagged ? 2 * n : 0;
  if (words.length !== HEADER_WORDS + n + n * width + comparedWords) throw bad("its length does not match");
  const order = words.slice(HEADER_WORDS, HEADER_WORDS + n);
  const seen = new Uint8Array(n);
  for (const v of order) {
    if (v >= n || seen[v]) throw bad("its order is not a permutation");
    seen[v] = 1;
  }
  const listWords = words.subarray(HEADER_WORDS + n, HEADER_WORDS + n + n * width);
  if (listWords.some((v) => v >= n && v !== NO_VERTEX)) throw bad("a list names a point out of range");
  const compared = flagged ? words.slice(HEADER_WORDS + n + n * width) : undefined;
  const lists = width
    ? GpuBuffer.fromArray(gpu, listWords.slice(), [n, width], "fanng refresh lists")
    : undefined;
  return refreshState(n, { order, lists, compared });
}
