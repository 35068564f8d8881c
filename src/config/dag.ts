// Pure DAG helpers shared by spec validation and the orchestrator.

export interface DagNode {
  name: string;
  deps: readonly string[];
}

export type TopoResult = { ok: true; order: string[] } | { ok: false; cycle: string[] };

/**
 * Kahn's algorithm, stable: among ready nodes the one listed first in `nodes` goes first, so the
 * order is repeatable. Dependencies that are not nodes are ignored (the caller reports them).
 * On a cycle, returns the nodes that could not be ordered (every node on or behind a cycle).
 */
export function topoSort(nodes: readonly DagNode[]): TopoResult {
  const names = new Set(nodes.map((n) => n.name));
  const indeg = new Map<string, number>();
  const users = new Map<string, string[]>();
  for (const n of nodes) {
    const deps = [...new Set(n.deps)].filter((d) => names.has(d));
    indeg.set(n.name, deps.length);
    for (const d of deps) users.set(d, [...(users.get(d) ?? []), n.name]);
  }
  const position = new Map(nodes.map((n, i) => [n.name, i]));
  const ready = nodes.filter((n) => indeg.get(n.name) === 0).map((n) => n.name);
  const order: string[] = [];
  while (ready.length > 0) {
    ready.sort((a, b) => position.get(a)! - position.get(b)!);
    const n = ready.shift()!;
    order.push(n);
    for (const u of users.get(n) ?? []) {
      const left = indeg.get(u)! - 1;
      indeg.set(u, left);
      if (left === 0) ready.push(u);
    }
  }
  if (order.length === nodes.length) return { ok: true, order };
  return { ok: false, cycle: nodes.map((n) => n.name).filter((n) => !order.includes(n)) };
}
