/**
 * The adaptive controller of the mining radius kappa (docs/method.md section 4).
 *
 * After every batch, with `e` an exponential moving average of the batch training error:
 *   log kappa <- clamp(log kappa + gain * (e - target), log kappaMin, log kappaMax)
 * Error above target -> kappa grows -> easier negatives (fewer smart triplets); below -> kappa shrinks.
 *
 * @example
 * ```ts
 * import { KappaController } from "./controller.ts";
 * const c = new KappaController({ targetError: 0.5, gain: 0.05, ema: 0.9, kappaMin: 1, kappaMax: 1024, initialKappa: 16 });
 * c.update(0.2); // a batch with 20% of its triplets violated
 * console.log(c.kappa < 16); // true: error below target shrinks kappa
 * ```
 * @module
 */
import { checkOption } from "../errors.ts";

/** Controller settings (defaults: target 0.5, gain 0.05, EMA 0.9, kappa in [1, 1024], initial 16). */
export interface ControllerConfig {
  /** Batch error the controller steers toward. */
  targetError: number;
  /** Step of log kappa per unit of error. */
  gain: number;
  /** EMA factor: e <- ema * e + (1 - ema) * batchError. */
  ema: number;
  /** Lower bound of kappa. */
  kappaMin: number;
  /** Upper bound of kappa. */
  kappaMax: number;
  /** kappa before the first update. */
  initialKappa: number;
}

/** Serialisable controller state, kept in checkpoints so a resumed run continues identically. */
export interface ControllerState {
  /** The current log kappa. */
  logKappa: number;
  /** EMA of the batch error (null before the first batch). */
  errorEma: number | null;
  /** Updates so far. */
  updates: number;
}

/** The defaults (docs/method.md section 4): target error 0.5, gain 0.05, EMA 0.9, kappa in [1, 1024] from 16. */
export function defaultControllerConfig(): ControllerConfig {
  return { targetError: 0.5, gain: 0.05, ema: 0.9, kappaMin: 1, kappaMax: 1024, initialKappa: 16 };
}

/** Checks a controller config; throws an OptionError naming the field (under `prefix`, e.g. `controller.`). */
export function validateControllerConfig(c: ControllerConfig, prefix = ""): void {
  const at = (field: keyof ControllerConfig) => `${prefix}${field}`;
  checkOption(
    c.kappaMin > 0 && c.kappaMax > 0,
    (n) =>
      `${n(at("kappaMin"))} and ${n(at("kappaMax"))} must be positive, got [${c.kappaMin}, ${c.kappaMax}]`,
  );
  checkOption(
    c.kappaMin <= c.kappaMax,
    (n) =>
      `kappa bounds are inverted: ${n(at("kappaMin"))} ${c.kappaMin} is above ${n(at("kappaMax"))} ` +
      `${c.kappaMax}; swap them`,
  );
  checkOption(c.initialKappa > 0, (n) => `${n(at("initialKappa"))} must be positive, got ${c.initialKappa}`);
  checkOption(
    c.ema >= 0 && c.ema < 1,
    (n) => `${n(at("ema"))} (the error EMA factor) must be in [0, 1), got ${c.ema}`,
  );
  checkOption(
    c.targetError > 0 && c.targetError < 1,
    (n) => `${n(at("targetError"))} must be in (0, 1), got ${c.targetError}`,
  );
  checkOption(Number.isFinite(c.gain), (n) => `${n(at("gain"))} must be a number, got ${c.gain}`);
}

/** Adaptive kappa: a clamped integral controller in log space driven by the EMA of the batch error. */
export class KappaController {
  #state: ControllerState;

  /** A controller with `config`, resumed from `state` when given. */
  constructor(readonly config: ControllerConfig, state?: ControllerState) {
    validateControllerConfig(config);
    const clamped = Math.min(config.kappaMax, Math.max(config.kappaMin, config.initialKappa));
    this.#state = state ? { ...state } : { logKappa: Math.log(clamped), errorEma: null, updates: 0 };
  }

  /** The current kappa. */
  get kappa(): number {
    return Math.exp(this.#state.logKappa);
  }

  /** The smoothed batch error (null before the first update). */
  get errorEma(): number | null {
    return this.#state.errorEma;
  }

  /** "min" or "max" when kappa sits at a bound, else null. */
  get atBound(): "min" | "max" | null {
    const eps = 1e-9;
    if (this.#state.logKappa <= Math.log(this.config.kappaMin) + eps) return "min";
    if (this.#state.logKappa >= Math.log(this.config.kappaMax) - eps) return "max";
    return null;
  }

  /** Feeds one batch's training error; returns the new kappa. */
  update(batchError: number): number {
    const s = this.#state;
    const c = this.config;
    s.errorEma = s.errorEma === null ? batchError : c.ema * s.errorEma + (1 - c.ema) * batchError;
    const next = s.logKappa + c.gain * (s.errorEma - c.targetError);
    s.logKappa = Math.min(Math.log(c.kappaMax), Math.max(Math.log(c.kappaMin), next));
    s.updates++;
    return this.kappa;
  }

  /** A copy of the state, for checkpoints. */
  state(): ControllerState {
    return { ...this.#state };
  }
}
