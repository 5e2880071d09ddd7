/** CUB-200-2011, Cars196 (mat, csv, txt) and folder-per-class listings, splits and their errors. */
import assert from "node:assert/strict";
import { UserError } from "../../lib/errors.ts";
import { listCub } from "../../lib/data/cub.ts";
import { listCars } from "../../lib/data/cars.ts";
import { listFolder } from "../../lib/data/folder.ts";
import { readCarsAnnosMat, readMat } from "../../lib/data/mat.ts";
import { writeCarsFixture, writeClassFolders, writeCubFixture } from "../fixtures/image_folders.ts";
import { writeMat } from "../fixtures/mat_writer.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "dml-data-" });
}

function rejectsWith(fn: () => Promise<unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("CUB: classes 1-100 train, 101-200 test; ids, labels, names; root may be the parent", async () => {
  const dir = await tempDir();
  try {
    await writeCubFixture(`${dir}/CUB_200_2011`, { classes: [1, 2, 100, 101, 150, 200], perClass: 2 });
    for (const root of [`${dir}/CUB_200_2011`, dir]) {
      const ds = await listCub(root);
      assert.equal(ds.format, "cub");
      assert.deepEqual(ds.train.map((s) => s.label), [1, 1, 2, 2, 100, 100]);
      assert.deepEqual(ds.test.map((s) => s.label), [101, 101, 150, 150, 200, 200]);
      assert.equal(ds.train[0].id, "images/001.Bird_1/Bird_1_0.jpg");
      assert.equal(ds.train[0].path, `${dir}/CUB_200_2011/images/001.Bird_1/Bird_1_0.jpg`);
      assert.equal(ds.classNames.get(150), "150.Bird_150");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CUB errors: not a CUB folder, missing image, missing label, empty class, bad line", async () => {
  const dir = await tempDir();
  try {
    await rejectsWith(() => listCub(dir), /not a CUB-200-2011 folder/);
    await writeCubFixture(dir, { classes: [1, 101], perClass: 2 });
    await Deno.remove(`${dir}/images/001.Bird_1/Bird_1_1.jpg`);
    await rejectsWith(
      () => listCub(dir),
      /images\.txt names 1 image\(s\) that do not exist, e\.g\. .*Bird_1_1\.jpg/,
    );
    await writeCubFixture(dir, { classes: [1, 101], perClass: 2 });
    await Deno.writeTextFile(`${dir}/classes.txt`, "1 001.Bird_1\n7 007.Lonely\n101 101.Bird_101\n");
    await rejectsWith(() => listCub(dir), /1 class\(es\) have no images: 7 \(007\.Lonely\)/);
    await writeCubFixture(dir, { classes: [1, 101], perClass: 2 });
    await Deno.writeTextFile(`${dir}/image_class_labels.txt`, "1 1\n2 1\n3 101\n");
    await rejectsWith(() => listCub(dir), /has no class for image 4/);
    await Deno.writeTextFile(`${dir}/image_class_labels.txt`, "1 1\n2 one\n");
    await rejectsWith(() => listCub(dir), /image_class_labels\.txt:2: expected "<id> <number>"/);
    await writeCubFixture(dir, { classes: [1, 101], perClass: 2 });
    await Deno.remove(`${dir}/classes.txt`);
    await rejectsWith(() => listCub(dir), /classes\.txt not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Cars196: cars_annos.mat (compressed and not), .csv and .txt give classes 1-98 train, 99-196 test", async () => {
  for (const compressMat of [true, false]) {
    const dir = await tempDir();
    try {
      const all = Array.from({ length: 196 }, (_, i) => i + 1);
      await writeCarsFixture(dir, { classes: all, perClass: 1, format: "mat", compressMat, sameImage: true });
      const ds = await listCars(dir);
      assert.deepEqual(ds.train.map((s) => s.label), all.slice(0, 98));
      assert.deepEqual(ds.test.map((s) => s.label), all.slice(98));
      assert.equal(ds.classNames.get(150), "Car Model 150 2012");
      assert.equal(ds.test[0].id, "car_ims/000099.jpg");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  for (const format of ["csv", "txt"] as const) {
    const dir = await tempDir();
    try {
      await writeCarsFixture(dir, { classes: [1, 2, 98, 99, 196], perClass: 2, format });
      const ds = await listCars(dir);
      assert.deepEqual(ds.train.map((s) => s.label), [1, 1, 2, 2, 98, 98], format);
      assert.deepEqual(ds.test.map((s) => s.label), [99, 99, 196, 196], format);
      assert.equal(ds.train[0].id, "car_ims/000001.jpg");
      assert.equal(ds.classNames.get(99), "class 99");
      await Deno.writeTextFile(
        `${dir}/class_names.txt`,
        Array.from({ length: 196 }, (_, i) => `Car ${i + 1}`).join("\n"),
      );
      await rejectsWith(() => listCars(dir), /class\(es\) have no images: 3 \(Car 3\)/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("Cars196: the .mat's class_names name the classes, and every named class must have images", async () => {
  const dir = await tempDir();
  try {
    await writeCarsFixture(dir, { classes: [1, 2, 99], perClass: 1, format: "mat" });
    // class_names has 99 entries, classes 3..98 have no images.
    await rejectsWith(() => listCars(dir), /96 class\(es\) have no images: 3 \(Car Model 3 2012\)/);
    const mat = await readCarsAnnosMat(await Deno.readFile(`${dir}/cars_annos.mat`), "x");
    assert.equal(mat.classNames?.length, 99);
    assert.deepEqual(mat.annotations[2], { path: "car_ims/000003.jpg", cls: 99 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MAT reader: a file written by scipy.io.savemat (compressed, uint8/uint16 fields) reads back", async () => {
  const bytes = await Deno.readFile(new URL("../fixtures/scipy_cars_annos.mat", import.meta.url));
  const { annotations, classNames } = await readCarsAnnosMat(bytes, "scipy_cars_annos.mat");
  assert.deepEqual(annotations, [
    { path: "car_ims/000001.jpg", cls: 1 },
    { path: "car_ims/000002.jpg", cls: 7 },
    { path: "car_ims/000003.jpg", cls: 196 },
  ]);
  assert.deepEqual(classNames, ["AM General Hummer SUV 2000", "Acura RL Sedan 2012"]);
  const vars = await readMat(bytes);
  const a = vars.get("annotations");
  assert.ok(
    a?.kind === "struct" && a.items[1].bbox_x2.kind === "numeric" && a.items[1].bbox_x2.data[0] === 300,
  );
});

Deno.test("MAT reader: numeric matrices are column-major, char matrices split into rows, v7.3 is refused", async () => {
  const bytes = await writeMat([
    { name: "m", value: { kind: "numeric", dims: [2, 3], data: new Float64Array([1, 2, 3, 4, 5, 6]) } },
    { name: "s", value: { kind: "char", dims: [2, 2], text: "acbd" } },
  ], false);
  const vars = await readMat(bytes);
  assert.deepEqual(vars.get("m"), {
    kind: "numeric",
    dims: [2, 3],
    data: new Float64Array([1, 2, 3, 4, 5, 6]),
  });
  assert.deepEqual(vars.get("s"), { kind: "char", dims: [2, 2], text: "ab\ncd" });
  const v73 = new Uint8Array(200);
  v73.set(new TextEncoder().encode("MATLAB 7.3 MAT-file, Platform: GLNXA64"));
  await rejectsWith(() => readMat(v73, "new.mat"), /v7\.3 \(HDF5\)/);
  await rejectsWith(() => readMat(new Uint8Array(10), "short.mat"), /shorter than the 128-byte header/);
});

Deno.test("Cars196 errors: no annotation file, bad csv header, image missing", async () => {
  const dir = await tempDir();
  try {
    await rejectsWith(() => listCars(dir), /none of cars_annos\.mat, cars_annos\.csv, cars_annos\.txt/);
    await writeCarsFixture(dir, { classes: [1, 99], perClass: 2, format: "csv" });
    await Deno.writeTextFile(`${dir}/cars_annos.csv`, "fname,label\ncar_ims/000001.jpg,1\n");
    await rejectsWith(() => listCars(dir), /must name the columns relative_im_path and class/);
    await Deno.writeTextFile(
      `${dir}/cars_annos.csv`,
      "relative_im_path,class\ncar_ims/000001.jpg,1\ncar_ims/999.jpg,99\n",
    );
    await rejectsWith(
      () => listCars(dir),
      /names 1 image\(s\) that do not exist, e\.g\. .*car_ims\/999\.jpg/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("folder-per-class: flat layout splits sorted classes in halves; train/test layout is kept", async () => {
  const dir = await tempDir();
  try {
    await writeClassFolders(`${dir}/flat`, {
      train: ["cat", "ant", "dog", "bee", "eel"],
      perClass: 2,
      png: true,
    });
    const flat = await listFolder(`${dir}/flat`);
    assert.deepEqual([...flat.classNames.values()], ["ant", "bee", "cat", "dog", "eel"]);
    assert.deepEqual([...new Set(flat.train.map((s) => s.label))], [0, 1, 2]);
    assert.deepEqual([...new Set(flat.test.map((s) => s.label))], [3, 4]);
    assert.deepEqual(flat.train.slice(0, 2).map((s) => s.id), ["ant/img_0.jpg", "ant/img_1.png"]);

    await writeClassFolders(`${dir}/split`, { train: ["a", "b"], test: ["c", "a"], perClass: 1 });
    const split = await listFolder(`${dir}/split`);
    assert.deepEqual(split.train.map((s) => [s.id, s.label]), [["train/a/img_0.jpg", 0], [
      "train/b/img_0.jpg",
      1,
    ]]);
    assert.deepEqual(split.test.map((s) => [s.id, s.label]), [["test/a/img_0.jpg", 0], [
      "test/c/img_0.jpg",
      2,
    ]]);

    await Deno.mkdir(`${dir}/flat/zzz_empty`);
    await rejectsWith(() => listFolder(`${dir}/flat`), /class folder .*zzz_empty has no images/);
    await rejectsWith(() => listFolder(`${dir}/nothing`), /folder not found/);
    await writeClassFolders(`${dir}/one`, { train: ["only"], perClass: 1 });
    await rejectsWith(() => listFolder(`${dir}/one`), /need class folders for both training and test/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
