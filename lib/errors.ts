/**
 * Errors a user can cause. Each carries one message saying what is wrong and what to do;
 * command-line tasks print `message` alone (no stack trace) and exit non-zero.
 * @module
 */

/** Spells an option's name for a message: a config path (`mining.searchEf`) by default, a flag at the CLI. */
export type OptionNamer = (option: string) => string;

/** A message that names options through `name`, so each caller can spell them its own way. */
export type OptionMessage = (name: OptionNamer) => string;

/**
 * An error caused by input or environment that the user can fix; `message` says how. A message about
 * options is given as an {@link OptionMessage}: `message` then names them as a library caller passed them
 * (config paths such as `mining.searchEf`, `train()` options such as `resume`), and a command line
 * re-renders it with its flags (`--search-ef`) through {@link UserError.render}.
 */
export class UserError extends Error {
  /** The error's name. */
  override name = "UserError";
  readonly #compose?: OptionMessage;

  /** `message`: the text, or a function of how options are named (config paths in the library, flags in the CLI). */
  constructor(message: string | OptionMessage, options?: ErrorOptions) {
    super(typeof message === "string" ? message : message((option) => option), options);
    if (typeof message !== "string") this.#compose = message;
  }

  /** The message with every option it names spelled by `name` (the message itself when it names none). */
  render(name: OptionNamer): string {
    return this.#compose ? this.#compose(name) : this.message;
  }
}

/** Throws a UserError whose message names options (an {@link OptionMessage}) unless `cond` holds. */
export function checkOption(cond: boolean, message: OptionMessage): asserts cond {
  if (!cond) throw new UserError(message);
}

/** Two shapes that do not fit together; the message names both. */
export class ShapeError extends UserError {
  /** The error's name. */
  override name = "ShapeError";
}

/** No WebGPU adapter or device could be obtained. */
export class GpuUnavailableError extends UserError {
  /** The error's name. */
  override name = "GpuUnavailableError";
}

/** Formats a shape for messages: `[4096 x 64]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(" x ")}]`;
}

/** Throws a ShapeError unless `cond` holds. */
export function checkShape(cond: boolean, message: string): asserts cond {
  if (!cond) throw new ShapeError(message);
}

/**
 * The GPU reported an error (validation, out of memory, internal, or a lost device) while running an
 * operation: its results cannot be trusted, so the operation fails instead of returning them. `where`
 * names the kernel or step; the message says what the device said and, when it can tell, what to change.
 */
export class GpuError extends UserError {
  /** The error's name. */
  override name = "GpuError";
  /** `hint` may name options (an {@link OptionMessage}), rendered like any UserError's. */
  constructor(readonly where: string, readonly gpuMessage: string, hint: string | OptionMessage = "") {
    super((name) => {
      const h = typeof hint === "string" ? hint : hint(name);
      return `GPU error in ${where}: ${gpuMessage.trim().replace(/\s+/g, " ")}${h ? `; ${h}` : ""}`;
    });
    this.hint = typeof hint === "string" ? hint : hint((option) => option);
  }

  /** What to change, when the error could tell (options named as config paths). */
  readonly hint: string;
}
