/**
 * Small SVG plotting helpers shared by the examples: round ticks, a plot
 * frame, and axes with gridlines, tick labels and titles.
 * @module
 */

/** Colour of axes, ticks and text. */
export const INK = "#333";
/** Colour of gridlines. */
export const GRID = "#e6e6e6";

/** Rounds a coordinate for the SVG text. */
export const r = (v: number): number => Math.round(v * 10) / 10;

/** About `count` round tick values (1, 2 or 5 × 10ⁿ apart) covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const spacing = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = Math.ceil(lo / spacing) * spacing; t <= hi + 1e-9; t += spacing) {
    out.push(Math.round(t / spacing) * spacing);
  }
  return out;
}

/** A plot area: where it sits in the SVG, in pixels. */
export interface Frame {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** A tick: its position in pixels and its label. */
export interface Tick {
  at: number;
  label: string;
}

/** The outline of a plot area. */
export function frameRect(f: Frame): string {
  return `<rect x="${f.left}" y="${f.top}" width="${f.width}" height="${f.height}" fill="none" stroke="${INK}"/>`;
}

/** Gridlines (optional), ticks, tick labels and axis titles of a plot area. */
export function axes(
  f: Frame,
  xTicks: Tick[],
  yTicks: Tick[],
  xTitle: string,
  yTitle: string,
  gridlines = true,
): string {
  const bottom = f.top + f.height;
  const parts: string[] = [];
  for (const { at, label } of xTicks) {
    if (gridlines) {
      parts.push(
        `<line x1="${r(at)}" y1="${f.top}" x2="${r(at)}" y2="${bottom}" stroke="${GRID}"/>`,
      );
    }
    parts.push(
      `<line x1="${r(at)}" y1="${bottom}" x2="${r(at)}" y2="${bottom + 5}" stroke="${INK}"/>`,
      `<text x="${r(at)}" y="${bottom + 18}" text-anchor="middle">${label}</text>`,
    );
  }
  for (const { at, label } of yTicks) {
    if (gridlines) {
      parts.push(
        `<line x1="${f.left}" y1="${r(at)}" x2="${f.left + f.width}" y2="${
          r(at)
        }" stroke="${GRID}"/>`,
      );
    }
    parts.push(
      `<line x1="${f.left - 5}" y1="${r(at)}" x2="${f.left}" y2="${r(at)}" stroke="${INK}"/>`,
      `<text x="${f.left - 8}" y="${r(at) + 4}" text-anchor="end">${label}</text>`,
    );
  }
  parts.push(
    `<text x="${f.left + f.width / 2}" y="${bottom + 38}" text-anchor="middle">${xTitle}</text>`,
    `<text transform="translate(${f.left - 46} ${
      f.top + f.height / 2
    }) rotate(-90)" text-anchor="middle">${yTitle}</text>`,
  );
  return parts.join("\n");
}
