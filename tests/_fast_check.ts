/**
 * fast-check, for the property tests, pinned to one exact version. The import
 * map in deno.json maps the bare name `fast-check` here rather than to the
 * `npm:` specifier itself: every `deno task` (the demo's too) first
 * downloads each npm package the import map names. `deno task test` checks
 * it against tests/deps.lock.
 *
 * @module
 */

export * from "npm:fast-check@4.10.2";
export { default } from "npm:fast-check@4.10.2";
