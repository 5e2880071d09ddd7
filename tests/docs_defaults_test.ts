/**
 * Every option of the public API says its default: each optional member of an exported interface named
 * `*Options` or `*Config`, reachable from an entry point of deno.json, carries a JSDoc `@default` tag
 * (callbacks, which have none, aside). Read from `deno doc --json`, as a user's tools would read it.
 */
import assert from "node:assert/strict";

const ENTRY_POINTS = ["mod.ts", "ops.ts", "ann.ts", "viz.ts", "io.ts", "testing.ts"];

interface DocTag {
  kind: string;
  value?: string;
}
interface DocProperty {
  name: string;
  optional?: boolean;
  jsDoc?: { doc?: string; tags?: DocTag[] };
  tsType?: { kind?: string };
}
interface DocDeclaration {
  kind: string;
  def?: { properties?: DocProperty[] };
  location: { filename: string };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}

Deno.test("every optional member of an exported options or config interface has an @default tag", async () => {
  const root = new URL("../", import.meta.url);
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: ["doc", "--json", ...ENTRY_POINTS],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  const doc = JSON.parse(new TextDecoder().decode(stdout)) as {
    nodes: Record<string, { symbols: DocSymbol[] }>;
  };
  const missing = new Set<string>();
  let checked = 0;
  for (const mod of Object.values(doc.nodes)) {
    for (const sym of mod.symbols) {
      if (!/(Options|Config)$/.test(sym.name)) continue;
      for (const dec of sym.declarations) {
        if (dec.kind !== "interface") continue;
        for (const p of dec.def?.properties ?? []) {
          if (!p.optional || p.tsType?.kind === "fnOrConstructor") continue;
          checked++;
          const tags = p.jsDoc?.tags ?? [];
          const hasDefault = tags.some((t) => t.kind === "default" || (t.value ?? "").startsWith("@default"));
          if (!hasDefault) {
            missing.add(`${sym.name}.${p.name} (${dec.location.filename.replace(root.href, "")})`);
          }
        }
      }
    }
  }
  assert.ok(checked > 100, `only ${checked} optional members found: did deno doc's output change?`);
  assert.deepEqual([...missing], [], `options without an @default tag:\n${[...missing].join("\n")}`);
});
