// The exclusion radius kernel (kernels/mining.wgsl `radius`) against its plain-TS reference.
import assert from "node:assert/strict";
import { getGpu } from "../../lib/gpu/device.ts";
import { GpuBuffer } from "../../lib/gpu/buffer.ts";
import { CommandBatch } from "../../lib/gpu/dispatch.ts";
import { encodeRadius, radiusRef } from "../../lib/mining/radius.ts";
import { Rng } from "../../lib/util/rng.ts";

Deno.test("radius = kappa * eps equals the reference bit for bit (1, primes, past one dispatch's x limit)", async () => {
  const gpu = await getGpu();
  const rng = new Rng(12);
  for (const [n, kappa] of [[1, 0.5], [97, 1.3], [4099, 2 / 3], [64 * 65_535 + 7, 0.9]]) {
    const eps = rng.uniformArray(n, 0, 10);
    eps[0] = n > 1 ? Infinity : 0;
    using src = GpuBuffer.fromArray(gpu, eps);
    const batch = new CommandBatch(gpu);
    using out = await encodeRadius(batch, src, kappa);
    await batch.submit();
    assert.deepEqual(await out.read(), radiusRef(eps, kappa), `n ${n}, kappa ${kappa}`);
  }
});
