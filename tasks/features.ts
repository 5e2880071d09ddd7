/**
 * `deno task features`: run a frozen ONNX backbone over an image dataset and store the features in a
 * cache folder that `deno task train --features <dir>` trains on. `--help` documents every flag.
 * @module
 */
import { parseArgs } from "node:util";
import { type OptionNamer, UserError } from "../lib/errors.ts";
import { fsErrorMessage } from "../lib/util/fs.ts";
import { extractFeatures, listImageDataset } from "../lib/backbone/features.ts";
import { OnnxBackbone, type ProviderChoice } from "../lib/backbone/onnx.ts";
import { type PresetName, PRESETS } from "../lib/backbone/preprocess.ts";
import type { ImageListFormat } from "../lib/data/image_list.ts";
import { kebabFlags, runTask } from "./cli.ts";

const HELP = `deno task features --dataset cub|cars|folder --root <dir> --model <model.onnx> [flags]

Extracts backbone features (GoogLeNet pool5 by default) for every image of a dataset into a feature
cache folder; an interrupted run resumes where it stopped. Then: deno task train --features <out>

Data
  --dataset cub|cars|folder  CUB-200-2011 (train classes 1-100, test 101-200), Cars196 (1-98 / 99-196)
                             or a folder-per-class layout (see README)
  --root <dir>               the dataset folder
  --skip-bad-images          skip unreadable images with a warning (default: stop with an error)
Model
  --model <file.onnx>        the ONNX image model (e.g. the ONNX Model Zoo googlenet-12.onnx)
  --output <name>            tensor to use as the feature: an exact tensor name, or pool5   [pool5]
  --provider auto|webgpu|wasm  onnxruntime execution provider; auto = WebGPU on a hardware
                             adapter, else wasm                                            [auto]
  --threads <n>              wasm threads                               [half the CPU cores, at most 4]
  --batch <n>                network images per batch                                      [16]
  --decode-workers <n>       threads decoding images while the backbone runs; 0 = main thread
                                                                     [cores - 1, max 8; 0 on <= 2 cores]
Preprocessing
  --preset caffe|torchvision|auto  caffe: BGR 0-255 minus mean (104,117,123), for Caffe/ONNX Model Zoo
                             GoogLeNet; torchvision: RGB [0,1], ImageNet mean/std. auto: caffe when
                             the model has Caffe layer names (conv1/7x7_s2, pool5/7x7_s1), else
                             torchvision                                                   [auto]
  --resize <n>               shorter side after resizing                                   [256]
  --crop <n>                 square crop fed to the network                                [224]
  --views <k>                views per training image: the centre crop plus k-1 random crops
                             with random mirroring (test images: centre crop only)         [1]
  --seed <n>                 seed of the random views                                      [0]
Output
  --out <dir>                cache folder     [runs/features/<dataset>-<model>-<output>-<preset>-k<views>]
  --overwrite                replace a folder holding features made with other settings
  --shard-size <n>           images per shard file (resume granularity)                    [256]
  --quiet                    no progress bar
`;

function intFlag(v: string | undefined, name: string, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new UserError(`--${name} must be a whole number >= ${min} (got '${v}')`);
  }
  return n;
}

function oneOf<T extends string>(v: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (v === undefined) return fallback;
  if (!allowed.includes(v as T)) {
    throw new UserError(`--${name} must be one of ${allowed.join(", ")} (got '${v}')`);
  }
  return v as T;
}

function slug(s: string): string {
  return s.replace(/\.onnx$/i, "").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "");
}

/** Runs the task on command-line `args`; returns the cache folder written (undefined for --help). */
export async function featuresMain(args: string[]): Promise<string | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: "string" },
      root: { type: "string" },
      model: { type: "string" },
      output: { type: "string", default: "pool5" },
      provider: { type: "string" },
      threads: { type: "string" },
      batch: { type: "string" },
      "decode-workers": { type: "string" },
      preset: { type: "string" },
      resize: { type: "string" },
      crop: { type: "string" },
      views: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      overwrite: { type: "boolean", default: false },
      "skip-bad-images": { type: "boolean", default: false },
      "shard-size": { type: "string" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return undefined;
  }
  if (!values.dataset || !values.root || !values.model) {
    throw new UserError("--dataset, --root and --model are required (deno task features --help for usage)");
  }
  const format = oneOf<ImageListFormat>(values.dataset, "dataset", ["cub", "cars", "folder"], "cub");
  const provider = oneOf<ProviderChoice>(values.provider, "provider", ["auto", "webgpu", "wasm"], "auto");
  const presetArg = oneOf(values.preset, "preset", ["auto", ...Object.keys(PRESETS)] as string[], "auto");
  const views = intFlag(values.views, "views", 1);
  const seed = intFlag(values.seed, "seed", 0, 0);
  if (
    values.out !== undefined &&
    (await Deno.permissions.query({ name: "write", path: values.out })).state !== "granted"
  ) {
    throw new UserError(fsErrorMessage(new Deno.errors.NotCapable(), values.out, "write"));
  }

  const ds = await listImageDataset(format, values.root);
  console.error(
    `features: ${ds.name} at ${ds.root}: ${ds.train.length} training images, ${ds.test.length} test images, ` +
      `${ds.classNames.size} classes`,
  );
  const backbone = await OnnxBackbone.load(values.model, {
    output: values.output,
    provider,
    threads: values.threads === undefined ? undefined : intFlag(values.threads, "threads", 1),
  });
  const preset: PresetName = presetArg === "auto"
    ? (backbone.caffeNaming ? "caffe" : "torchvision")
    : presetArg as PresetName;
  if (presetArg === "auto") {
    console.error(
      `features: preprocessing preset '${preset}' (${
        backbone.caffeNaming ? "the model has Caffe layer names" : "no Caffe layer names found"
      }; pass --preset to choose)`,
    );
  }
  const crop = intFlag(values.crop, "crop", backbone.inputSize.height ?? 224);
  const resize = intFlag(values.resize, "resize", Math.max(256, crop));
  const modelName = slug(values.model.split("/").pop() ?? "model");
  const outDir = values.out ??
    `runs/features/${ds.name}-${modelName}-${slug(backbone.outputName)}-${preset}-k${views}`;
  try {
    const result = await extractFeatures(ds, backbone, {
      outDir,
      preprocess: { preset, resize, crop },
      views,
      seed,
      batch: intFlag(values.batch, "batch", 16),
      decodeWorkers: values["decode-workers"] === undefined
        ? undefined
        : intFlag(values["decode-workers"], "decode-workers", 0, 0),
      shardSize: intFlag(values["shard-size"], "shard-size", 256),
      skipBadImages: values["skip-bad-images"],
      overwrite: values.overwrite,
      quiet: values.quiet,
    });
    const m = result.manifest;
    console.log(
      `${result.dir}: ${m.splits.train.images} training images x ${m.splits.train.views} view(s), ` +
        `${m.splits.test.images} test images, ${m.featureDim}-d features, ${m.skipped.length} skipped. ` +
        `Train with: deno task train --features ${result.dir}`,
    );
    return result.dir;
  } finally {
    await backbone.release();
  }
}

/** How this task's flags spell the options that extractFeatures' messages name. */
export const FEATURES_FLAGS: OptionNamer = kebabFlags({ outDir: "out", "preprocess.crop": "crop" });

if (import.meta.main) {
  await runTask(async () => {
    await featuresMain(Deno.args);
  }, { optionName: FEATURES_FLAGS });
}
