/**
 * `deno task index <run-dir>`: turns a trained run into a search engine: `<run-dir>/index/index.bin`
 * (lib/retrieval/format.ts) with the head, the gallery's embeddings and FANNG graph, labels and ids.
 * `--help` documents every flag.
 * @module
 */
import { UserError } from "../lib/errors.ts";
import { type GallerySplit, indexRun, type IndexRunResult } from "../lib/retrieval/run_index.ts";
import { optionalInt, parseOnePositional, runTask } from "./cli.ts";

const HELP = `deno task index [flags] <run-dir>

Builds a retrieval index from a finished training run: the run's head embeds the gallery on the GPU, a
FANNG graph is built over the embeddings, and both go with the labels, the sample ids (IDX rows or image
paths), the backbone key and preprocessing (feature-cache runs) and the gallery's pixels (IDX runs) into
one versioned, checksummed file, <run-dir>/index/index.bin. Then:
  deno task search <run-dir>/index --test-row 3      deno task serve <run-dir>/index

  --gallery train|test|all  which split(s) of the run to index                    [test]
  --out <dir>               output folder                                         [<run-dir>/index]
  --max-degree <n>          FANNG maximum out-degree                              [32]
  --seed <n>                seed of the graph construction                        [1]
  --budget <n>              default search budget (distance evaluations per query) [256]
  --no-pixels               leave the gallery's pixels out (smaller; no thumbnails on the page)
  --quiet                   no progress bars
  -h, --help                this text`;

/** Runs the task on `args`; returns what was written (undefined for --help). */
export async function indexMain(args: string[]): Promise<IndexRunResult | undefined> {
  const parsed = parseOnePositional(
    args,
    {
      gallery: { type: "string" },
      out: { type: "string" },
      "max-degree": { type: "string" },
      seed: { type: "string" },
      budget: { type: "string" },
      "no-pixels": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    HELP,
    "give one run folder: deno task index <run-dir>",
  );
  if (!parsed) return undefined;
  const { values, positional } = parsed;
  const gallery = values.gallery ?? "test";
  if (!["train", "test", "all"].includes(gallery)) {
    throw new UserError(`--gallery must be train, test or all, got '${gallery}'`);
  }
  const result = await indexRun(positional, {
    gallery: gallery as GallerySplit,
    out: values.out,
    maxDegree: optionalInt(values["max-degree"], "max-degree", 1),
    seed: optionalInt(values.seed, "seed", 0),
    budget: optionalInt(values.budget, "budget", 1),
    pixels: !values["no-pixels"],
    quiet: values.quiet,
  });
  if (!values.quiet) {
    const h = result.header, mb = result.bytes.length / 2 ** 20;
    const s = result.seconds;
    console.log(
      `index: ${result.path}: ${h.count} ${h.gallery.split} items of ${h.gallery.dataset}, ${h.dims}-d, ` +
        `${mb.toFixed(2)} MiB (${(mb * 10000 / h.count).toFixed(2)} MiB per 10k items); embedding ` +
        `${s.embed.toFixed(2)} s, graph ${s.graph.toFixed(2)} s, encoding ${s.encode.toFixed(2)} s`,
    );
  }
  return result;
}

if (import.meta.main) {
  await runTask(async () => {
    await indexMain(Deno.args);
  });
}
