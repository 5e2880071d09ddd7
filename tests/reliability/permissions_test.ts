/**
 * Each task asks for what it needs and no more (deno.json), and works with exactly that: writes only under
 * runs/ and /tmp, reads only the environment variables it uses, runs no program (the test task: deno, to
 * run the tasks as a user does, and Chromium for the report check; never apt-get). A write outside is one
 * message, exit 1.
 */
import assert from "node:assert/strict";
import { buildGoogLeNet } from "../../tasks/bench/_googlenet.ts";
import { writeCubFixture } from "../fixtures/image_folders.ts";
import { assertRefused, denoTask, listDir, ROOT, taskPermissions } from "./helpers.ts";

const flagValues = (perms: string[], flag: string): string[] | "all" | undefined => {
  const f = perms.find((p) => p === flag || p.startsWith(`${flag}=`));
  if (!f) return undefined;
  return f === flag ? "all" : f.slice(flag.length + 1).split(",");
};

Deno.test("deno.json: every task's permissions are narrow (no blanket write, env or run; no apt-get)", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks as Record<string, string>;
  for (const [name, command] of Object.entries(tasks)) {
    assert.doesNotMatch(command, /(^|\s)(-A|--allow-all)(\s|$)|apt-get/, `${name}: ${command}`);
    const perms = await taskPermissions(name);
    const write = flagValues(perms, "--allow-write");
    assert.notEqual(write, "all", `${name} may write anywhere`);
    for (const path of write ?? []) assert.ok(["runs", "/tmp"].includes(path), `${name} writes ${path}`);
    const run = flagValues(perms, "--allow-run");
    assert.notEqual(run, "all", `${name} may run any program`);
    const allowedRuns: Record<string, string[]> = {
      test: ["deno", "/usr/bin/chromium"],
      bench: ["/usr/bin/python3"],
      "bench-suite": ["/usr/bin/python3"],
    };
    assert.deepEqual(run ?? [], allowedRuns[name] ?? [], `${name} runs ${run}`);
    const env = flagValues(perms, "--allow-env");
    // playwright-core (the report's browser check) reads the whole environment when it starts Chromium.
    if (name !== "test") assert.notEqual(env, "all", `${name} reads every environment variable`);
  }
  for (const name of ["train", "features", "experiment"]) {
    assert.deepEqual(flagValues(await taskPermissions(name), "--allow-env"), ["DENO_WEBGPU_BACKEND"], name);
  }
  assert.equal(flagValues(await taskPermissions("report"), "--allow-env"), undefined);
});

Deno.test("no test installs system packages or runs a program other than deno and chromium", async () => {
  const offenders: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(path);
        for (const m of text.matchAll(/new Deno\.Command\(\s*("[^"]*"|[A-Za-z_.]+)/g)) {
          if (!['"deno"', "CHROMIUM"].includes(m[1])) offenders.push(`${path.slice(ROOT.length)}: ${m[1]}`);
        }
      }
    }
  };
  await walk(`${ROOT}/tests`);
  assert.deepEqual(offenders, []);
});

Deno.test("the features and report tasks run within their permissions; a write outside is one message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dml-perms-" });
  try {
    await Deno.writeFile(`${dir}/net.onnx`, buildGoogLeNet({ seed: 3 }).bytes);
    await writeCubFixture(`${dir}/CUB_200_2011`, { classes: [1, 2, 101, 102], perClass: 2 });
    const args = ["--dataset", "cub", "--root", dir, "--model", `${dir}/net.onnx`, "--quiet"];
    assertRefused(
      await denoTask("features", [...args, "--out", "/var/dml-test-features"]),
      /\/var\/dml-test-features.*outside (the folders this task may write|what this task may use)/,
    );
    assert.deepEqual(await listDir("/var/dml-test-features"), []);
    const ok = await denoTask("features", [...args, "--out", `${dir}/feats`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((await listDir(`${dir}/feats`)).includes("manifest.json"));
    const train = await denoTask("train", [
      ...[
        "--features",
        `${dir}/feats`,
        "--batch-size",
        "2",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        `${dir}/run`,
      ],
    ]);
    assert.equal(train.code, 0, train.stderr);
    const report = await denoTask("report", [`${dir}/run`, "--no-tsne", "--quiet"]);
    assert.equal(report.code, 0, report.stderr);
    assert.ok((await listDir(`${dir}/run`)).includes("report.html"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
