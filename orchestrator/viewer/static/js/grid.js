// A spatial index of rectangles (the graph's boxes and edges): which of them meet a
// rectangle (the part of the graph in view), in their own order, without testing each
// one. Drawing a frame of playback tested every box and edge of the layout (66,000 of
// each for a run of 66,000 steps with its plan open), though only the few in view are
// drawn.

const CELL = 512; // layout units per side of a cell
const SPREAD_MAX = 1024; // a rectangle over more cells is kept apart and tested each time

/** Whether rectangle `b` ({x, y, w, h}) meets the one from (x0, y0) to (x1, y1). */
export function meets(b, x0, y0, x1, y1) {
  return b.x <= x1 && b.x + b.w >= x0 && b.y <= y1 && b.y + b.h >= y0;
}

function cellKey(cx, cy) {
  return cx * 4194304 + cy; // exact for cells up to 2^22 along y (2 billion units)
}

export class Grid {
  /** @param {Array<{x: number, y: number, w: number, h: number}>} rects */
  constructor(rects) {
    this.rects = rects;
    this.cells = new Map(); // cell key -> indexes of the rectangles over it, ascending
    this.wide = []; // indexes of the rectangles over more than SPREAD_MAX cells
    this.stamp = new Uint32Array(rects.length);
    this.queries = 0; // marks the rectangles met by the current query in `stamp`
    rects.forEach((r, i) => {
      const cx0 = Math.floor(r.x / CELL), cx1 = Math.floor((r.x + r.w) / CELL);
      const cy0 = Math.floor(r.y / CELL), cy1 = Math.floor((r.y + r.h) / CELL);
      if ((cx1 - cx0 + 1) * (cy1 - cy0 + 1) > SPREAD_MAX || !(cx1 >= cx0 && cy1 >= cy0)) {
        this.wide.push(i); // a NaN coordinate lands here too: tested as before
        return;
      }
      for (let cx = cx0; cx <= cx1; cx++) {
        for (let cy = cy0; cy <= cy1; cy++) {
          const key = cellKey(cx, cy);
          const cell = this.cells.get(key);
          if (cell) cell.push(i); else this.cells.set(key, [i]);
        }
      }
    });
  }

  /** Indexes of the rectangles that meet the one from (x0, y0) to (x1, y1), ascending. */
  query(x0, y0, x1, y1) {
    const found = [];
    const stamp = this.stamp;
    const mark = ++this.queries;
    const take = (i) => {
      if (stamp[i] === mark) return;
      stamp[i] = mark;
      if (meets(this.rects[i], x0, y0, x1, y1)) found.push(i);
    };
    for (const i of this.wide) take(i);
    const cx0 = Math.floor(x0 / CELL), cx1 = Math.floor(x1 / CELL);
    const cy0 = Math.floor(y0 / CELL), cy1 = Math.floor(y1 / CELL);
    if ((cx1 - cx0 + 1) * (cy1 - cy0 + 1) > this.cells.size) { // a view wider than the graph
      for (const cell of this.cells.values()) for (const i of cell) take(i);
    } else {
      for (let cx = cx0; cx <= cx1; cx++) {
        for (let cy = cy0; cy <= cy1; cy++) {
          const cell = this.cells.get(cellKey(cx, cy));
          if (cell) for (const i of cell) take(i);
        }
      }
    }
    return found.sort((a, b) => a - b);
  }
}
