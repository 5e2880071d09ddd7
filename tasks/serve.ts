/**
 * `deno task serve <index>`: serves the retrieval page (web/) on 127.0.0.1. The page downloads the index
 * and runs the head and the FANNG search in the browser's own WebGPU, with the same library code as
 * `deno task search`. `--help` documents the flags.
 *
 * The browser cannot import TypeScript, so the page's script (web/app.ts and the library under it,
 * WGSL kernels included as text imports) is bundled into one JavaScript file when the server starts,
 * with Deno's own bundler (`Deno.bundle`, hence `--unstable-bundle` in the task): always the code of
 * this checkout, no build step to run, nothing fetched from a CDN. docs/retrieval.md says why.
 * @module
 */
import page from "../web/index.html" with { type: "text" };
import { UserError } from "../lib/errors.ts";
import { decodeRetrievalIndex, type RetrievalHeader } from "../lib/retrieval/format.ts";
import { indexFilePath } from "../lib/retrieval/open.ts";
import { sniffImageMime } from "../lib/viz/thumbnails.ts";
import { parseOnePositional, runTask } from "./cli.ts";

const HELP = `deno task serve [flags] <index>

Serves a search page for a retrieval index made by 'deno task index' (<index>: the index folder or its
index.bin) at http://127.0.0.1:<port>/. The page loads the index over HTTP and searches in the browser's
WebGPU (Chrome/Chromium 113+, Edge, Safari 26+, Firefox 141+ on Windows): pick gallery items, or drop an
image when the index carries pixels. Everything the page needs comes from this server.

  --port <n>    port to listen on (0: any free one)                             [8000]
  --quiet       print only the address
  -h, --help    this text`;

const APP_ENTRY = new URL("../web/app.ts", import.meta.url);

type Bundler = (options: {
  entrypoints: string[];
  platform: "browser";
  format: "esm";
  write: false;
  minify?: boolean;
}) => Promise<{
  success: boolean;
  errors: { text?: string }[];
  outputFiles?: { path: string; text(): string }[];
}>;

/** The page's script as one ES module for browsers (Deno's bundler; needs --unstable-bundle). */
export async function bundleWebApp(): Promise<string> {
  const bundle = (Deno as unknown as { bundle?: Bundler }).bundle;
  if (!bundle) {
    throw new UserError(
      "this Deno has no bundler API: run the server with 'deno task serve' (it passes --unstable-bundle) " +
        "on Deno 2.5 or newer",
    );
  }
  const result = await bundle({
    entrypoints: [APP_ENTRY.href],
    platform: "browser",
    format: "esm",
    write: false,
  });
  const file = result.outputFiles?.[0];
  if (!result.success || !file) {
    throw new Error(`bundling web/app.ts failed: ${result.errors.map((e) => e.text).join("; ")}`);
  }
  return file.text();
}

/** A running server. */
export interface ServeHandle {
  url: string;
  header: RetrievalHeader;
  server: Deno.HttpServer<Deno.NetAddr>;
}

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  bin: "application/octet-stream",
};

/** Starts serving the index at `indexPath` on 127.0.0.1:`port`. */
export async function serveIndex(indexPath: string, port: number): Promise<ServeHandle> {
  const file = await indexFilePath(indexPath);
  const bytes = await Deno.readFile(file).catch((e) => {
    throw new UserError(`cannot read ${file} (${(e as Error).message})`);
  });
  // Refuse a damaged index here, with the file's name, rather than in the browser.
  const { header, ids } = decodeRetrievalIndex(bytes, file);
  const script = await bundleWebApp();
  const root = header.identities.kind === "path" ? header.identities.root : undefined;
  const respond = (body: BodyInit, type: string) =>
    new Response(body, { headers: { "content-type": type, "cache-control": "no-store" } });

  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    if (path === "/" || path === "/index.html") return respond(page, TYPES.html);
    if (path === "/app.js") return respond(script, TYPES.js);
    if (path === "/index.bin") return respond(bytes as Uint8Array<ArrayBuffer>, TYPES.bin);
    const image = /^\/image\/(\d+)$/.exec(path);
    if (image && root) {
      const item = Number(image[1]);
      const id = ids[item];
      if (id === undefined || id.split("/").includes("..")) {
        return new Response("no such item", { status: 404 });
      }
      try {
        const data = await Deno.readFile(`${root}/${id}`);
        return respond(data, sniffImageMime(data) ?? "application/octet-stream");
      } catch {
        return new Response(`image ${id} not found under ${root}`, { status: 404 });
      }
    }
    return new Response("not found", { status: 404 });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, handler);
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new UserError(`port ${port} is in use: pass another --port (or --port 0 for any free one)`);
    }
    throw e;
  }
  return { url: `http://127.0.0.1:${server.addr.port}/`, header, server };
}

/** Runs the task on `args`; returns the running server (undefined for --help). */
export async function serveMain(args: string[]): Promise<ServeHandle | undefined> {
  const parsed = parseOnePositional(
    args,
    {
      port: { type: "string", default: "8000" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    HELP,
    "give one index: deno task serve <index-dir>",
  );
  if (!parsed) return undefined;
  const { values, positional } = parsed;
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--port must be a whole number from 0 to 65535, got '${values.port}'`);
  }
  const handle = await serveIndex(positional, port);
  const h = handle.header;
  console.log(
    values.quiet ? handle.url : `serve: ${handle.url}  (${h.count} ${h.gallery.split} items of ` +
      `${h.gallery.dataset}; open it in a WebGPU browser; Ctrl-C stops)`,
  );
  return handle;
}

if (import.meta.main) {
  await runTask(async () => {
    await serveMain(Deno.args);
  });
}
