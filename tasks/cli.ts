/**
 * Shared entry for command-line tasks: errors the user can fix print one message (no stack trace)
 * and exit with status 1; anything else is a bug and keeps its stack. A path outside the task's
 * permissions (deno.json) or one the operating system refuses is the user's to fix too.
 * @module
 */
import { UserError } from "../lib/errors.ts";

function isArgError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** Runs `main`; user errors end the process with one line on stderr and exit code 1. */
export async function runTask(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UserError || isArgError(e) || e instanceof TypeError && /^--/.test(e.message)) {
      console.error(`error: ${(e as Error).message.trim().replace(/\s*\n\s*/g, " ")}`);
      Deno.exit(1);
    }
    if (e instanceof Deno.errors.NotCapable) {
      console.error(
        `error: ${(e as Error).message.replace(/, run again with.*$/, "")}: outside what this task may use ` +
          `(its permissions in deno.json); use paths inside them (e.g. under runs/)`,
      );
      Deno.exit(1);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      console.error(
        `error: ${(e as Error).message}: the operating system refused it; choose a path you may use`,
      );
      Deno.exit(1);
    }
    throw e;
  }
}
