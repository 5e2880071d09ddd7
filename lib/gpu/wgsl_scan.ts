/**
 * A small static reading of WGSL source text, enough to check a kernel against its spec (./spec.ts): the
 * resource declarations (`@group(g) @binding(n) var<...> name: type;`), the module's functions, and, per
 * entry point, which resource variables and which uniform fields its code can reach (through the functions
 * it calls, directly or not).
 *
 * It is a reading, not a compiler: names are resolved per function (a parameter or a `let`/`var`/`const`
 * anywhere in a function hides a module variable of that name in the whole function) and every reference
 * counts, whatever branch or define guards it (the same "static use" WGSL uses for pipeline layouts).
 * @module
 */

/** One `@group(g) @binding(n) var<space> name: type;` declaration. */
export interface WgslBinding {
  /** The bind group. */
  group: number;
  /** The binding number. */
  binding: number;
  /** The variable's name. */
  name: string;
  /** The address space and access between the angle brackets, e.g. "storage, read_write"; "" for none. */
  space: string;
  /** The declared type, e.g. "array<f32>" or "Params". */
  type: string;
}

/** A module-scope function: its name and text (signature and body). */
export interface WgslFunction {
  /** The function's name. */
  name: string;
  /** Its text: signature and body. */
  text: string;
}

/** What a module declares, read from its text. */
export interface WgslModule {
  /** Every `@group(0) @binding(n)` declaration, in text order. */
  bindings: WgslBinding[];
  /** Every function by name. */
  functions: Map<string, WgslFunction>;
  /** Every module-scope name: structs, consts, overrides, aliases, variables and functions. */
  declared: Set<string>;
}

/** What an entry point can reach. */
export interface WgslReach {
  /** Module resource variables referenced by the entry point or any function it calls. */
  bindings: Set<string>;
  /** Fields `f` of `uniform.f` referenced likewise (for the uniform variable named in the call). */
  fields: Set<string>;
}

/** The source with comments replaced by spaces (line breaks kept, so line numbers stay). */
export function stripComments(source: string): string {
  let out = "";
  let i = 0;
  while (i < source.length) {
    if (source.startsWith("//", i)) {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (source.startsWith("/*", i)) {
      // Block comments nest in WGSL.
      let depth = 0;
      do {
        if (source.startsWith("/*", i)) {
          depth++;
          out += "  ";
          i += 2;
        } else if (source.startsWith("*/", i)) {
          depth--;
          out += "  ";
          i += 2;
        } else {
          out += source[i] === "\n" ? "\n" : " ";
          i++;
        }
      } while (depth > 0 && i < source.length);
    } else {
      out += source[i++];
    }
  }
  return out;
}

const BINDING = /((?:@\w+\s*\([^)]*\)\s*)+)var\s*(?:<([^>]*)>)?\s*([A-Za-z_]\w*)\s*:\s*([^;]+);/g;
const IDENT = /[A-Za-z_]\w*/y;
const DECL = /(?:(?:struct|const|override|alias)\s+|var\s*(?:<[^>]*>)?\s*)([A-Za-z_]\w*)/y;

/** Reads the declarations and functions of a WGSL module. */
export function scanWgsl(source: string): WgslModule {
  const text = stripComments(source);
  const bindings: WgslBinding[] = [];
  for (const m of text.matchAll(BINDING)) {
    const group = /@group\s*\(\s*(\d+)\s*\)/.exec(m[1]);
    const binding = /@binding\s*\(\s*(\d+)\s*\)/.exec(m[1]);
    if (!group || !binding) continue;
    bindings.push({
      group: Number(group[1]),
      binding: Number(binding[1]),
      name: m[3],
      space: (m[2] ?? "").replace(/\s+/g, " ").trim(),
      type: m[4].replace(/\s+/g, "").trim(),
    });
  }
  const functions = new Map<string, WgslFunction>();
  const declared = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (depth === 0 && "scoav".includes(c) && !/\w/.test(text[i - 1] ?? "")) {
      DECL.lastIndex = i;
      const decl = DECL.exec(text);
      if (decl) declared.add(decl[1]);
    }
    if (depth === 0 && /^fn\s/.test(text.slice(i, i + 3)) && !/\w/.test(text[i - 1] ?? "")) {
      const name = /^fn\s+([A-Za-z_]\w*)/.exec(text.slice(i))?.[1];
      const open = text.indexOf("{", i);
      if (!name || open < 0) continue;
      let d = 0, end = open;
      for (; end < text.length; end++) {
        if (text[end] === "{") d++;
        else if (text[end] === "}" && --d === 0) break;
      }
      functions.set(name, { name, text: text.slice(i, end + 1) });
      declared.add(name);
      i = end;
    }
  }
  return { bindings, functions, declared };
}

/** Names a function declares for itself: its parameters and its let/var/const names. */
function localNames(fn: WgslFunction): Set<string> {
  const names = new Set<string>();
  const open = fn.text.indexOf("(");
  let d = 0, close = open;
  for (; close < fn.text.length; close++) {
    if (fn.text[close] === "(") d++;
    else if (fn.text[close] === ")" && --d === 0) break;
  }
  for (const m of fn.text.slice(open + 1, close).matchAll(/([A-Za-z_]\w*)\s*:/g)) names.add(m[1]);
  for (const m of fn.text.slice(close).matchAll(/\b(?:let|var|const)\s*(?:<[^>]*>)?\s*([A-Za-z_]\w*)/g)) {
    names.add(m[1]);
  }
  return names;
}

/**
 * Identifiers a function refers to (not members after a dot, not its own locals), and the members it reads
 * from `uniform` (as `uniform.member`).
 */
function references(
  fn: WgslFunction,
  uniform: string | undefined,
): { names: Set<string>; fields: Set<string> } {
  const locals = localNames(fn);
  const names = new Set<string>(), fields = new Set<string>();
  const body = fn.text.slice(fn.text.indexOf("("));
  for (let i = 0; i < body.length;) {
    IDENT.lastIndex = i;
    const m = /[A-Za-z_]/.test(body[i]) && !/[\w.]/.test(body[i - 1] ?? "") ? IDENT.exec(body) : null;
    if (!m) {
      i++;
      continue;
    }
    i += m[0].length;
    // A member after `.` (with optional spaces) is not a name; `x . y` is rare but legal.
    if (/\.\s*$/.test(body.slice(Math.max(0, m.index - 8), m.index))) continue;
    if (locals.has(m[0])) continue;
    names.add(m[0]);
    if (m[0] === uniform) {
      const member = /^\s*\.\s*([A-Za-z_]\w*)/.exec(body.slice(i));
      if (member) fields.add(member[1]);
    }
  }
  return { names, fields };
}

/**
 * The resource variables and uniform fields an entry point reaches (through every function it calls).
 * `uniform` names the uniform variable whose fields are collected. Throws when the entry point is missing.
 */
export function reach(module: WgslModule, entry: string, uniform?: string): WgslReach {
  const start = module.functions.get(entry);
  if (!start) throw new Error(`no function named ${entry}`);
  const resources = new Set(module.bindings.map((b) => b.name));
  const bindings = new Set<string>(), fields = new Set<string>();
  const seen = new Set<string>([entry]);
  const todo = [start];
  while (todo.length) {
    const fn = todo.pop()!;
    const refs = references(fn, uniform);
    refs.fields.forEach((f) => fields.add(f));
    for (const name of refs.names) {
      if (resources.has(name)) bindings.add(name);
      const callee = module.functions.get(name);
      if (callee && !seen.has(name)) {
        seen.add(name);
        todo.push(callee);
      }
    }
  }
  return { bindings, fields };
}
