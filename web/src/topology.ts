// Layout of the app topology: components as nodes in columns, each component left of what it
// depends on (column = the longest chain of dependants above it), rows sorted by name.
// Dependencies on another app's components appear as external nodes. Cycles (the API does not
// forbid A→B→A) are cut where a path would revisit a node, so layout always ends.

export interface TopoNode {
  id: string; // component name, or "app/component" for another app's component
  label: string;
  external: boolean;
}
export interface TopoEdge {
  from: string;
  to: string;
}
export interface Placed extends TopoNode {
  x: number;
  y: number;
  column: number;
}
export interface Layout {
  nodes: Placed[];
  edges: (TopoEdge & { x1: number; y1: number; x2: number; y2: number })[];
  width: number;
  height: number;
}

export const NODE_W = 210;
export const NODE_H = 54;
const GAP_X = 90;
const GAP_Y = 28;
const PAD = 16;

export function layoutTopology(nodes: TopoNode[], edges: TopoEdge[]): Layout {
  const ids = new Set(nodes.map((n) => n.id));
  const valid = edges.filter((e) => ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
  const out = new Map<string, string[]>();
  for (const e of valid) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);

  // column(n) = max over paths from any node to n of the path length (cycle-safe DFS).
  const column = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  const visit = (id: string, depth: number, onPath: Set<string>) => {
    if (depth > (column.get(id) ?? 0)) column.set(id, depth);
    for (const next of out.get(id) ?? []) {
      if (onPath.has(next) || (column.get(next) ?? 0) > depth) continue;
      onPath.add(next);
      visit(next, depth + 1, onPath);
      onPath.delete(next);
    }
  };
  for (const n of [...nodes].sort((a, b) => a.id.localeCompare(b.id))) visit(n.id, column.get(n.id) ?? 0, new Set([n.id]));

  const byColumn = new Map<number, TopoNode[]>();
  for (const n of nodes) {
    const c = column.get(n.id) ?? 0;
    byColumn.set(c, [...(byColumn.get(c) ?? []), n]);
  }
  const placed: Placed[] = [];
  let rows = 0;
  for (const [c, list] of [...byColumn.entries()].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => Number(a.external) - Number(b.external) || a.label.localeCompare(b.label));
    list.forEach((n, r) => placed.push({ ...n, column: c, x: PAD + c * (NODE_W + GAP_X), y: PAD + r * (NODE_H + GAP_Y) }));
    rows = Math.max(rows, list.length);
  }
  const pos = new Map(placed.map((p) => [p.id, p]));
  const columns = byColumn.size ? Math.max(...byColumn.keys()) + 1 : 0;
  return {
    nodes: placed,
    edges: valid.map((e) => {
      const a = pos.get(e.from)!;
      const b = pos.get(e.to)!;
      // Forward edges leave from the right side; a back edge (a cycle) from the left.
      const forward = b.x > a.x;
      return {
        ...e,
        x1: forward ? a.x + NODE_W : a.x,
        y1: a.y + NODE_H / 2,
        x2: forward ? b.x : b.x + NODE_W,
        y2: b.y + NODE_H / 2,
      };
    }),
    width: Math.max(PAD * 2 + columns * NODE_W + Math.max(columns - 1, 0) * GAP_X, 200),
    height: Math.max(PAD * 2 + rows * NODE_H + Math.max(rows - 1, 0) * GAP_Y, NODE_H + PAD * 2),
  };
}
