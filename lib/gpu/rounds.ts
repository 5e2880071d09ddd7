/**
 * Resumable GPU work in rounds. Mesa's llvmpipe (gallivm) ends every loop of an invocation once that
 * invocation has taken 65,535 loop back-edges in total (its "loop limiter", LP_MAX_TGSI_LOOP_ITERATIONS),
 * silently: a long graph search would return truncated results. The FANNG kernels therefore do a bounded
 * amount of work per dispatch, keep their state in scratch memory, and count unfinished invocations; the
 * host dispatches rounds until none is left. On other adapters the bound is effectively infinite.
 * @module
 */
import { GpuBuffer } from "./buffer.ts";
import type { Gpu } from "./device.ts";
import { CommandBatch } from "./dispatch.ts";

/** Mesa's llvmpipe/lavapipe: a CPU adapter that runs a workgroup's invocations as SIMD lanes of one thread. */
export function isGallivm(gpu: Gpu): boolean {
  const r = gpu.report;
  return r.isSoftware && /llvmpipe|lavapipe/i.test(`${r.name} ${r.vendor} ${r.architecture}`);
}

/** Loop back-edges one invocation may take per dispatch (a margin below llvmpipe's 65,535). */
export function loopBudget(gpu: Gpu): number {
  return isGallivm(gpu) ? 60000 : 0x3fffffff;
}

/** Loop back-edges of one distance evaluation over vectors in `blocks` blocks of `w4` vec4 (8 per trip). */
export function distanceTrips(blocks: number, w4: number): number {
  return blocks * (Math.floor(w4 / 8) + (w4 % 8));
}

/**
 * Runs rounds `encodeRound(batch, round)` (round 0 first) until a round reports, in `active[round]`, that
 * no invocation is unfinished. `perSubmit` rounds go into each submission; after `maxRounds` rounds it
 * throws (a kernel that never finishes is a bug). After each submission `onSubmitted` hears how many
 * invocations are still unfinished (the count the loop reads anyway). Returns the number of rounds run.
 */
export async function runRounds(
  gpu: Gpu,
  label: string,
  encodeRound: (batch: CommandBatch, round: number, active: GpuBuffer<"u32">) => Promise<void>,
  { perSubmit = 1, maxRounds = 4096, onSubmitted }: {
    perSubmit?: number;
    maxRounds?: number;
    onSubmitted?: (left: number) => void;
  } = {},
): Promise<number> {
  using active = GpuBuffer.zeros(gpu, "u32", [maxRounds], `${label} active`);
  let round = 0;
  while (round < maxRounds) {
    const batch = new CommandBatch(gpu, label);
    const last = Math.min(maxRounds, round + Math.max(1, perSubmit));
    for (; round < last; round++) await encodeRound(batch, round, active);
    await batch.submit();
    const [left] = await active.read(round - 1, 1);
    onSubmitted?.(left);
    if (left === 0) return round;
  }
  throw new Error(`${label}: work still unfinished after ${maxRounds} rounds`);
}
