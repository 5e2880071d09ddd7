import assert from "node:assert/strict";
import { type ControllerConfig, KappaController } from "../../lib/mining/controller.ts";
import { UserError } from "../../lib/errors.ts";
import { Rng } from "../../lib/util/rng.ts";

const BASE: ControllerConfig = {
  targetError: 0.5,
  gain: 0.05,
  ema: 0.9,
  kappaMin: 1,
  kappaMax: 1024,
  initialKappa: 16,
};

/** A plant whose batch error falls as kappa grows (easier negatives): 0.5 exactly at kappa = 40. */
function plantError(kappa: number, rng: Rng, noise: number): number {
  const e = 1 / (1 + (kappa / 40) ** 1.5);
  return Math.min(1, Math.max(0, e + noise * (rng.float() - 0.5)));
}

function simulate(initialKappa: number, steps: number, noise = 0.1) {
  const c = new KappaController({ ...BASE, initialKappa });
  const rng = new Rng(7);
  const kappas: number[] = [];
  for (let i = 0; i < steps; i++) {
    c.update(plantError(c.kappa, rng, noise));
    kappas.push(c.kappa);
  }
  return { c, kappas };
}

Deno.test("controller settles at the target error from below and from above, within bounds", () => {
  for (const start of [2, 900]) {
    const { kappas } = simulate(start, 6000);
    assert.ok(kappas.every((k) => k >= 1 - 1e-9 && k <= 1024 + 1e-9), "kappa left its bounds");
    const tail = kappas.slice(-1000);
    const mean = tail.reduce((a, b) => a + b, 0) / tail.length;
    assert.ok(
      Math.abs(Math.log(mean / 40)) < 0.25,
      `start ${start}: settled at ${mean.toFixed(1)}, expected ~40`,
    );
    // Settled means small wander, not oscillation between the bounds.
    assert.ok(Math.max(...tail) / Math.min(...tail) < 2, `start ${start}: still oscillating`);
  }
});

Deno.test("controller approaches from the side it starts on (monotone while far from target)", () => {
  const below = simulate(2, 300, 0).kappas;
  const above = simulate(900, 300, 0).kappas;
  for (let i = 1; i < below.length && below[i] < 30; i++) assert.ok(below[i] >= below[i - 1]);
  for (let i = 1; i < above.length && above[i] > 55; i++) assert.ok(above[i] <= above[i - 1]);
});

Deno.test("controller pins at a bound and reports it", () => {
  const c = new KappaController(BASE);
  for (let i = 0; i < 2000; i++) c.update(0.05); // error always below target -> kappa to its minimum
  assert.equal(c.atBound, "min");
  assert.ok(Math.abs(c.kappa - 1) < 1e-9);
  for (let i = 0; i < 5000; i++) c.update(0.99);
  assert.equal(c.atBound, "max");
});

Deno.test("controller EMA and one update follow the law exactly", () => {
  const c = new KappaController(BASE);
  c.update(0.3); // first update seeds the EMA with the batch error
  assert.equal(c.errorEma, 0.3);
  assert.ok(Math.abs(Math.log(c.kappa) - (Math.log(16) + 0.05 * (0.3 - 0.5))) < 1e-12);
  c.update(0.7);
  assert.ok(Math.abs(c.errorEma! - (0.9 * 0.3 + 0.1 * 0.7)) < 1e-12);
});

Deno.test("controller state round-trips and bad settings are refused", () => {
  const a = new KappaController(BASE);
  a.update(0.2);
  const b = new KappaController(BASE, a.state());
  assert.equal(b.update(0.4), a.update(0.4));
  assert.throws(
    () => new KappaController({ ...BASE, kappaMin: 10, kappaMax: 2 }),
    (e) => e instanceof UserError && /inverted/.test(e.message),
  );
  assert.throws(() => new KappaController({ ...BASE, ema: 1 }), UserError);
  assert.throws(() => new KappaController({ ...BASE, kappaMin: 0 }), UserError);
});
