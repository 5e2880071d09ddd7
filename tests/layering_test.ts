/**
 * The import graph of shipped code (mod.ts, lib/, tasks/) read from its import statements: no runtime
 * import cycle, nothing imports tests/, and every import goes down the declared order of LAYERS.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The unit of the top-level modules (mod.ts and any other entry point of deno.json). */
const ENTRY_POINTS = "entry points";

/**
 * The order of lib/, lowest first. A module may import its own unit (a folder, or a single top-level
 * file) and any unit of a lower layer; units of one layer never import each other. tasks/ and the entry
 * points sit above everything.
 */
const LAYERS: readonly (readonly string[])[] = [
  ["lib/errors.ts"],
  ["lib/util"],
  ["lib/gpu"], // device, buffers, dispatch, kernels, rounds (resumable GPU work)
  ["lib/ops"], // one module per kernel family
  ["lib/eval"], // metrics, k-means, t-SNE: used by the index build (k-means partition)
  ["lib/ann"], // the FANNG index
  ["lib/model", "lib/data"],
  ["lib/backbone"], // ONNX features of lib/data's images
  ["lib/mining"], // over lib/ann
  ["lib/dataset_config.ts"], // composes lib/data (IDX) and lib/backbone (feature caches)
  ["lib/config.ts", "lib/run_log.ts", "lib/run_folder.ts"], // config composes each section's defaults
  ["lib/viz", "lib/train.ts"],
  ["lib/retrieval", "lib/experiments"],
  ["tasks"],
  [ENTRY_POINTS],
];

/** Runtime cycles allowed for now, as `a.ts -> b.ts` edges of the cycle (none: keep it that way). */
const KNOWN_CYCLE_EDGES: ReadonlySet<string> = new Set([]);

/** One import of a module: the path it resolves to, and whether it exists at run time. */
export interface ImportEdge {
  from: string;
  to: string;
  /** `import type`, `export type`, or braces holding only `type` names: erased before run time. */
  typeOnly: boolean;
  /** `import("...")` with a literal path. */
  dynamic: boolean;
}

function listModules(dir: string, out: string[] = []): string[] {
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) listModules(path, out);
    else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

function resolve(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const s of specifier.split("/")) {
    if (s === "..") parts.pop();
    else if (s !== ".") parts.push(s);
  }
  return parts.join("/");
}

const STATIC = /^(import|export)\s+(type\s+)?([^;]*?)\s*from\s+["']([^"']+)["']|^import\s+["']([^"']+)["']/gm;
const DYNAMIC = /(?<![\w.$])(typeof\s+)?import\(\s*["']([^"']+)["']\s*\)/g;

/** The relative imports of one module's source (top-level statements start a line; comments do not). */
export function parseImports(from: string, source: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const m of source.matchAll(STATIC)) {
    const specifier = m[4] ?? m[5];
    if (!specifier.startsWith(".")) continue;
    const clause = (m[3] ?? "").trim();
    const names = /^\{([\s\S]*)\}$/.exec(clause)?.[1].split(",").map((s) => s.trim()).filter(Boolean);
    const typeOnly = !!m[2] || (!!names && names.length > 0 && names.every((n) => n.startsWith("type ")));
    edges.push({ from, to: resolve(from, specifier), typeOnly, dynamic: false });
  }
  for (const line of source.split("\n")) {
    if (/^\s*(\*|\/\/)/.test(line)) continue; // doc comments and examples
    for (const m of line.matchAll(DYNAMIC)) {
      if (!m[2].startsWith(".")) continue;
      const typeOnly = !!m[1] || /\btype\s+\w+\s*=\s*$/.test(line.slice(0, m.index));
      edges.push({ from, to: resolve(from, m[2]), typeOnly, dynamic: true });
    }
  }
  return edges;
}

/** The unit a module belongs to: its lib/ folder, the top-level lib/ file itself, tasks, or the entries. */
export function unitOf(path: string): string {
  const parts = path.split("/");
  if (parts.length === 1) return ENTRY_POINTS;
  if (parts[0] === "lib") return parts.length > 2 ? `lib/${parts[1]}` : path;
  return parts[0];
}

function layerOf(unit: string): number {
  return LAYERS.findIndex((l) => l.includes(unit));
}

/** Runtime cycles among `edges`, each as its modules in order (Tarjan's strongly connected components). */
export function runtimeCycles(edges: ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (e.typeOnly || e.from === e.to) continue;
    next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  }
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [];
  const onStack = new Set<string>(), cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) cycles.push(scc.sort());
    }
  };
  for (const v of next.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

function shippedModules(): string[] {
  const rootEntries = [...Deno.readDirSync(ROOT)].filter((e) => e.isFile && e.name.endsWith(".ts"))
    .map((e) => e.name);
  return [...rootEntries, ...listModules("lib"), ...listModules("tasks")].sort();
}

function shippedEdges(): ImportEdge[] {
  return shippedModules().flatMap((m) => parseImports(m, Deno.readTextFileSync(`${ROOT}${m}`)));
}

Deno.test("layering: the parser reads static, type-only and dynamic imports and skips comments", () => {
  const src = [
    `import { a } from "./a.ts";`,
    `import { type B, type C } from "../b/c.ts";`,
    `import type { D } from "./d.ts";`,
    `export { e } from "./e.ts";`,
    `export type { F } from "./f.ts";`,
    `import {\n  g,\n  type H,\n} from "./g.ts";`,
    `import "./side.ts";`,
    ` * import { x } from "./example.ts";`,
    `// const y = await import("./commented.ts");`,
    `const lazy = await import("./lazy.ts");`,
    `type M = typeof import("./typed.ts");`,
    `import { npm } from "npm:thing";`,
  ].join("\n");
  const got = parseImports("lib/x/y.ts", src).map((e) =>
    `${e.to}${e.typeOnly ? " type" : ""}${e.dynamic ? " dyn" : ""}`
  );
  assert.deepEqual(got.sort(), [
    "lib/b/c.ts type",
    "lib/x/a.ts",
    "lib/x/d.ts type",
    "lib/x/e.ts",
    "lib/x/f.ts type",
    "lib/x/g.ts",
    "lib/x/lazy.ts dyn",
    "lib/x/side.ts",
    "lib/x/typed.ts type dyn",
  ]);
  assert.deepEqual(
    runtimeCycles([
      { from: "a", to: "b", typeOnly: false, dynamic: false },
      { from: "b", to: "a", typeOnly: false, dynamic: false },
      { from: "c", to: "d", typeOnly: false, dynamic: false },
      { from: "d", to: "c", typeOnly: true, dynamic: false },
    ]),
    [["a", "b"]],
  );
});

Deno.test("layering: every lib/ unit has a declared layer", () => {
  const units = new Set(shippedModules().filter((m) => m.startsWith("lib/")).map(unitOf));
  const undeclared = [...units].filter((u) => layerOf(u) < 0);
  assert.deepEqual(undeclared, [], "add these to LAYERS in tests/layering_test.ts (and to docs/design.md)");
});

Deno.test("layering: no runtime import cycle in mod.ts, lib/ or tasks/", () => {
  const edges = shippedEdges();
  const allowed = (e: ImportEdge) => KNOWN_CYCLE_EDGES.has(`${e.from} -> ${e.to}`);
  const cycles = runtimeCycles(edges.filter((e) => !allowed(e)));
  assert.deepEqual(cycles, [], `runtime import cycles:\n${cycles.map((c) => c.join(" <-> ")).join("\n")}`);
  // An exception that no longer matches anything must go.
  const stale = [...KNOWN_CYCLE_EDGES].filter((k) =>
    !edges.some((e) => !e.typeOnly && `${e.from} -> ${e.to}` === k)
  );
  assert.deepEqual(stale, [], "KNOWN_CYCLE_EDGES lists an import that is gone: remove it");
});

Deno.test("layering: shipped code never imports tests/", () => {
  const bad = shippedEdges().filter((e) => e.to.startsWith("tests/")).map((e) => `${e.from} -> ${e.to}`);
  assert.deepEqual(bad, []);
});

Deno.test("layering: every import goes down the declared order (type-only imports too)", () => {
  const bad: string[] = [];
  for (const e of shippedEdges()) {
    if (!/^(lib|tasks)\//.test(e.to)) continue; // kernels/, web/ assets
    const from = unitOf(e.from), to = unitOf(e.to);
    if (from === to) continue;
    const lf = layerOf(from), lt = layerOf(to);
    if (!(lt < lf)) bad.push(`${e.from} -> ${e.to} (${from}: layer ${lf}, ${to}: layer ${lt})`);
  }
  assert.deepEqual(bad, [], `imports against the order of LAYERS:\n${bad.join("\n")}`);
});
