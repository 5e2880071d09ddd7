/**
 * Worker entry of {@link DecodePool} (lib/backbone/decode_pool.ts): each message is a decode job (read an
 * image file, decode it, write its preprocessed views); the reply transfers the float block back.
 * @module
 */
import { type DecodeJob, runDecodeJob } from "./decode_pool.ts";

const scope = globalThis as unknown as {
  onmessage: ((ev: MessageEvent<DecodeJob>) => void) | null;
  postMessage(message: unknown, transfer: Transferable[]): void;
};
scope.onmessage = async (ev) => {
  const result = await runDecodeJob(ev.data);
  scope.postMessage(result, result.data ? [result.data.buffer as ArrayBuffer] : []);
};
