/**
 * `deno task search <index>`: the k nearest gallery items of a query, through the index's head and FANNG
 * graph (lib/retrieval). `--help` documents every flag.
 * @module
 */
import type { ProviderChoice } from "../lib/backbone/onnx.ts";
import { UserError } from "../lib/errors.ts";
import { searchHtml } from "../lib/retrieval/html.ts";
import { openRetriever } from "../lib/retrieval/open.ts";
import {
  imageQueries,
  type Queries,
  type QueryInfo,
  testRowQueries,
  vectorQueries,
} from "../lib/retrieval/queries.ts";
import type { RetrievalResult, Retriever } from "../lib/retrieval/retriever.ts";
import { writeFileAtomic } from "../lib/util/fs.ts";
import { kebabFlags, optionalInt, parseOnePositional, runTask } from "./cli.ts";

const HELP = `deno task search <index> (--test-row <i> | --image <file> | --vector <file.f32>) [flags]

Finds the nearest gallery items of a query in a retrieval index made by 'deno task index' (<index>: the
index folder, its index.bin, or an http(s) URL of either). The query goes through the index's head on
the GPU, then the FANNG graph search (or exact kNN with --exact).

Query (one of)
  --test-row <i>[,<j>...]  rows of the run's test split (loaded as the run loaded its data); a row that is
                           in the gallery is left out of its own results
  --image <file>           an image (repeatable): resized to the gallery's pixels (IDX runs), or run
                           through the index's backbone (feature-cache runs; needs --model)
  --vector <file.f32>      raw little-endian float32 head inputs, whole rows (784 pixels in [0, 1] for
                           Fashion-MNIST, backbone features for a feature-cache run)
Search
  --k <n>                  neighbours per query                                           [10]
  --budget <n>             graph search budget, distance evaluations per query  [the index's, >= 4k]
  --exact                  exact k nearest neighbours (brute force on the GPU)
  --model <file.onnx>      the backbone of a feature-cache index, for --image
  --provider auto|webgpu|wasm  onnxruntime execution provider for --model                  [auto]
Output
  --json                   one JSON object per query: {"query": {...}, "neighbours": [{"id", "label",
                           "distance"}, ...]} ascending by (Euclidean) distance
  --html <file>            a picture grid of the queries and their neighbours
  -h, --help               this text`;

/** One query's result as printed by --json. */
export interface SearchRecord {
  query: { name: string; testRow?: number; id?: string; label?: number; class?: string };
  neighbours: { rank: number; item: number; id: string; label: number; class: string; distance: number }[];
}

/** What {@link searchMain} found. */
export interface SearchOutput {
  records: SearchRecord[];
  result: RetrievalResult;
}

function records(r: Retriever, info: QueryInfo[], result: RetrievalResult): SearchRecord[] {
  return info.map((q, i) => ({
    query: {
      name: q.name,
      ...(q.testRow !== undefined ? { testRow: q.testRow } : {}),
      ...(q.id !== undefined ? { id: q.id } : {}),
      ...(q.label !== undefined ? { label: q.label, class: r.className(q.label) } : {}),
    },
    neighbours: result.queries[i].map((n, rank) => ({
      rank: rank + 1,
      item: n.item,
      id: n.id,
      label: n.label,
      class: r.className(n.label),
      distance: n.distance,
    })),
  }));
}

function table(rec: SearchRecord): string {
  const q = rec.query;
  const label = (l: number, c: string) => (c === String(l) ? c : `${l} ${c}`);
  const head = `${q.name}${q.id && q.id !== q.name ? ` (${q.id})` : ""}${
    q.label !== undefined ? `, label ${label(q.label, q.class!)}` : ""
  }`;
  const rows = rec.neighbours.map((
    n,
  ) => [String(n.rank), n.id, label(n.label, n.class), n.distance.toFixed(4)]);
  const all = [["rank", "id", "label", "distance"], ...rows];
  const w = all[0].map((_, c) => Math.max(...all.map((r) => r[c].length)));
  const line = (r: string[]) =>
    r.map((v, c) => (c === 0 || c === 3 ? v.padStart(w[c]) : v.padEnd(w[c]))).join("  ");
  return [head, ...all.map(line)].join("\n");
}

/** Runs the task on `args` and prints (through `print`); returns the results (undefined for --help). */
export async function searchMain(
  args: string[],
  print: (text: string) => void = console.log,
): Promise<SearchOutput | undefined> {
  const parsed = parseOnePositional(
    args,
    {
      "test-row": { type: "string" },
      image: { type: "string", multiple: true },
      vector: { type: "string" },
      k: { type: "string" },
      budget: { type: "string" },
      exact: { type: "boolean", default: false },
      model: { type: "string" },
      provider: { type: "string" },
      json: { type: "boolean", default: false },
      html: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    HELP,
    "give one index: deno task search <index-dir> --test-row <i>",
    print,
  );
  if (!parsed) return undefined;
  const { values, positional } = parsed;
  const kinds = [values["test-row"], values.image, values.vector].filter((v) => v !== undefined).length;
  if (kinds !== 1) throw new UserError("give exactly one query: --test-row, --image or --vector (--help)");
  const provider = values.provider ?? "auto";
  if (!["auto", "webgpu", "wasm"].includes(provider)) {
    throw new UserError(`--provider must be auto, webgpu or wasm, got '${provider}'`);
  }
  const k = optionalInt(values.k, "k", 1) ?? 10;
  const budget = optionalInt(values.budget, "budget", 1);
  using r = await openRetriever(positional);
  if (k > r.size) throw new UserError(`--k ${k} is more than the gallery's ${r.size} items`);
  let queries: Queries;
  if (values["test-row"] !== undefined) {
    const rows = values["test-row"].split(",").map((s) => {
      const n = Number(s.trim());
      if (s.trim() === "" || !Number.isInteger(n) || n < 0) {
        throw new UserError(
          `--test-row takes whole numbers >= 0 separated by commas, got '${values["test-row"]}'`,
        );
      }
      return n;
    });
    queries = await testRowQueries(r, rows);
  } else if (values.image) {
    queries = await imageQueries(r, values.image, {
      model: values.model,
      provider: provider as ProviderChoice,
    });
  } else {
    queries = await vectorQueries(r, values.vector!);
  }
  const result = await r.search(queries.features, k, {
    budget,
    exact: values.exact,
    exclude: queries.exclude,
  });
  const out = records(r, queries.info, result);
  if (values.json) {
    for (const rec of out) print(JSON.stringify(rec));
  } else {
    print(out.map(table).join("\n\n"));
    const total = result.embedMs + result.searchMs, per = total / out.length;
    const method = {
      "graph-gpu": "graph search",
      "graph-cpu": "graph search (CPU)",
      "exact-gpu": "exact search",
    };
    print(
      `\n${out.length} ${out.length === 1 ? "query" : "queries"} in ${total.toFixed(1)} ms (${
        per.toFixed(1)
      } ms ` +
        `each; head ${result.embedMs.toFixed(1)} ms, ${method[result.method]} ${
          result.searchMs.toFixed(1)
        } ms, ` +
        `${
          result.evaluations.toFixed(0)
        } distance evaluations per query) on ${r.gpu.report.name}; the first ` +
        "search of a process includes compiling the kernels",
    );
  }
  if (values.html) {
    await writeFileAtomic(values.html, await searchHtml(r, queries.info, result.queries));
    if (!values.json) print(`pictures: ${values.html}`);
  }
  return { records: out, result };
}

if (import.meta.main) {
  await runTask(async () => {
    await searchMain(Deno.args);
  }, { optionName: kebabFlags() });
}
