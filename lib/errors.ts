/**
 * Errors a user can cause. Each carries one message saying what is wrong and what to do;
 * command-line tasks print `message` alone (no stack trace) and exit non-zero.
 * @module
 */

/** An error caused by input or environment that the user can fix; `message` says how. */
export class UserError extends Error {
  /** The error's name. */
  override name = "UserError";
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
  /** `where`: the operation or kernel; `gpuMessage`: what the device said; `hint`: what to change. */
  constructor(readonly where: string, readonly gpuMessage: string, readonly hint = "") {
    super(`GPU error in ${where}: ${gpuMessage.trim().replace(/\s+/g, " ")}${hint ? `; ${hint}` : ""}`);
  }
}
