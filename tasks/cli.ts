/**
 * Shared entry for command-line tasks: errors the user can fix print one message (no stack trace)
 * and exit with status 1; anything else is a bug and keeps its stack. A path outside the task's
 * permissions (deno.json) or one the operating system refuses is the user's to fix too.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { type OptionNamer, UserError } from "../lib/errors.ts";

function isArgError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** How {@link runTask} reports errors. */
export interface TaskOptions {
  /** Spells an option named in a library message as this task's flag (e.g. `mining.searchEf` -> `--search-ef`). */
  optionName?: OptionNamer;
}

/**
 * An {@link OptionNamer} for a task whose flags spell its library options in kebab case
 * (`skipBadImages` -> `--skip-bad-images`); `renames` maps the options whose flag differs
 * (`outDir` -> `out`).
 */
export function kebabFlags(renames: Readonly<Record<string, string>> = {}): OptionNamer {
  return (option) => `--${renames[option] ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Runs `main`; user errors end the process with one line on stderr and exit code 1, with the options they
 * name spelled by `optionName`.
 */
export async function runTask(main: () => Promise<void>, options: TaskOptions = {}): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UserError || isArgError(e) || e instanceof TypeError && /^--/.test(e.message)) {
      const message = e instanceof UserError && options.optionName
        ? e.render(options.optionName)
        : (e as Error).message;
      console.error(`error: ${message.trim().replace(/\s*\n\s*/g, " ")}`);
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

/** A whole number from flag `--name`'s text, at least `min`; undefined when the flag was not given. */
export function optionalInt(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min) {
    throw new UserError(`--${name} must be a whole number >= ${min}, got '${v}'`);
  }
  return n;
}

/**
 * Parses a task's `args` (strict) that take exactly one positional argument. `options` should hold a
 * boolean `help`: when set, prints `help` and returns undefined. A missing or extra positional is a
 * UserError saying `usage`.
 */
export function parseOnePositional<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
  help: string,
  usage: string,
  print: (text: string) => void = console.log,
): { values: TaskValues<O>; positional: string } | undefined {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options });
  if ((values as Record<string, unknown>).help) {
    print(help);
    return undefined;
  }
  if (positionals.length !== 1) throw new UserError(`${usage} (--help for flags)`);
  return { values: values as TaskValues<O>, positional: positionals[0] };
}

/** The parsed flag values of a strict parse with `options`. */
export type TaskValues<O extends NonNullable<ParseArgsConfig["options"]>> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>["values"];
