/**
 * Image decoding and preprocessing on a pool of module Workers, so that on a fast backbone (the WebGPU
 * EP on a real GPU) JPEG decoding, which is single-threaded JavaScript, does not bound the throughput.
 * With 0 workers every job runs on the calling thread. Jobs carry a path and the view parameters; each
 * result is the image's views as a `views x 3 x crop x crop` float block, or the error it hit.
 *
 * @example
 * ```ts
 * import { DecodePool } from "./decode_pool.ts";
 * const pool = new DecodePool(3);
 * const r = await pool.decode({ path: "bird.jpg", image: 0, views: 1, seed: 0,
 *   spec: { preset: "caffe", resize: 256, crop: 224 } });
 * pool.close();
 * ```
 * @module
 */
import { decodeImage, ImageDecodeError, readImage } from "../data/image.ts";
import { UserError } from "../errors.ts";
import { type PreprocessSpec, viewCrop, writeView } from "./preprocess.ts";

/** One image to decode and preprocess. */
export interface DecodeJob {
  /** Set by the pool to match replies. */
  id?: number;
  /** The image file (also names the image in errors). */
  path: string;
  /** The file's bytes, when already in memory (then `path` is not read). */
  bytes?: Uint8Array;
  /** The image's index in its split (seeds its random views). */
  image: number;
  /** Views to write: the centre crop, then random crops. */
  views: number;
  seed: number;
  spec: PreprocessSpec;
}

/** The result of a {@link DecodeJob}. */
export interface DecodeResult {
  id?: number;
  /** `views x 3 x crop x crop` floats, when the image could be read. */
  data?: Float32Array;
  /** What went wrong: an undecodable image, another user error (e.g. missing file), or a bug. */
  error?: { kind: "decode" | "user" | "other"; message: string };
}

/** Decodes and preprocesses one job on the calling thread. */
export async function runDecodeJob(job: DecodeJob): Promise<DecodeResult> {
  try {
    const img = job.bytes ? decodeImage(job.bytes, job.path) : await readImage(job.path);
    const per = 3 * job.spec.crop * job.spec.crop;
    const data = new Float32Array(job.views * per);
    for (let v = 0; v < job.views; v++) {
      writeView(
        img,
        viewCrop(img.width, img.height, job.spec, v, job.image, job.seed),
        job.spec,
        data,
        v * per,
      );
    }
    return { id: job.id, data };
  } catch (e) {
    const kind = e instanceof ImageDecodeError ? "decode" : e instanceof UserError ? "user" : "other";
    return { id: job.id, error: { kind, message: (e as Error).message } };
  }
}

/** Turns a failed result back into the error the calling thread would have seen. */
export function resultError(r: DecodeResult): Error | undefined {
  if (!r.error) return undefined;
  if (r.error.kind === "decode") return new ImageDecodeError(r.error.message);
  if (r.error.kind === "user") return new UserError(r.error.message);
  return new Error(r.error.message);
}

// Taken at import, before onnxruntime's Node build can swap in node:worker_threads' Worker.
const WebWorker = globalThis.Worker;

/** A fixed set of decode workers fed from one queue. */
export class DecodePool {
  readonly #workers: Worker[] = [];
  readonly #idle: Worker[] = [];
  readonly #queue: { job: DecodeJob; resolve: (r: DecodeResult) => void }[] = [];
  readonly #pending = new Map<number, (r: DecodeResult) => void>();
  #nextId = 0;

  /** Starts `workers` module Workers (0: decode on the calling thread). */
  constructor(readonly workers: number) {
    for (let i = 0; i < workers; i++) {
      const w = new WebWorker(new URL("./decode_worker.ts", import.meta.url).href, { type: "module" });
      w.onmessage = (ev: MessageEvent<DecodeResult>) => {
        const resolve = this.#pending.get(ev.data.id!);
        this.#pending.delete(ev.data.id!);
        this.#idle.push(w);
        this.#pump();
        resolve?.(ev.data);
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        for (const [id, resolve] of this.#pending) {
          this.#pending.delete(id);
          resolve({ id, error: { kind: "other", message: `decode worker failed: ${ev.message}` } });
        }
      };
      this.#workers.push(w);
      this.#idle.push(w);
    }
  }

  #pump(): void {
    while (this.#idle.length && this.#queue.length) {
      const w = this.#idle.pop()!;
      const { job, resolve } = this.#queue.shift()!;
      this.#pending.set(job.id!, resolve);
      w.postMessage(job);
    }
  }

  /** Decodes one job (never rejects: failures come back in `error`). */
  decode(job: DecodeJob): Promise<DecodeResult> {
    if (this.workers === 0) return runDecodeJob(job);
    return new Promise((resolve) => {
      this.#queue.push({ job: { ...job, id: this.#nextId++ }, resolve });
      this.#pump();
    });
  }

  /** Stops the workers. */
  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
    this.#idle.length = 0;
  }
}
