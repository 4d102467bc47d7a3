// Run by test_page_grid.py in Chromium: the grid's queries against testing every
// rectangle; returns {problems, queries, found}.
(async () => {
  const { Grid, meets } = await import('/static/js/grid.js');
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const rects = [];
  for (let i = 0; i < 3000; i++) { // nodes, a few groups and long edges, some far out
    const big = rand() < 0.02, far = rand() < 0.01;
    rects.push({ x: rand() * (far ? 2e7 : 60000), y: rand() * 20000,
                 w: big ? rand() * 2e6 : 10 + rand() * 300, h: big ? rand() * 30000 : 10 + rand() * 200 });
  }
  rects.push({ x: NaN, y: 0, w: 0, h: 0 }); // an edge whose box is missing
  rects.push({ x: 512, y: 512, w: 0, h: 0 }); // on a cell's corner
  const grid = new Grid(rects);
  const problems = [];
  let found = 0, queries = 0;
  const views = [[500, 500, 512, 512], [-1e9, -1e9, 1e9, 1e9], [-300, -300, 100, 100]];
  for (let q = 0; q < 400; q++) {
    const x0 = rand() * 70000 - 1000, y0 = rand() * 22000 - 1000;
    const span = rand() < 0.1 ? 60000 : rand() * 3000;
    views.push([x0, y0, x0 + span, y0 + span * 0.6]);
  }
  for (const [x0, y0, x1, y1] of views) {
    const want = [];
    rects.forEach((r, i) => { if (meets(r, x0, y0, x1, y1)) want.push(i); });
    const got = grid.query(x0, y0, x1, y1);
    queries++;
    found += got.length;
    if (JSON.stringify(got) !== JSON.stringify(want)) {
      problems.push(`view ${[x0, y0, x1, y1]}: ${got.length} found, ${want.length} meet it`);
    }
  }
  if (new Grid([]).query(0, 0, 10, 10).length) problems.push('an empty grid found something');
  return { problems: problems.slice(0, 5), queries, found };
})()
