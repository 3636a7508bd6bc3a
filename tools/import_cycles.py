"""Module-level import cycles among tumorboard's kernel modules (imports inside functions and under
TYPE_CHECKING are not cycles: they run after every module has loaded).

    python tools/import_cycles.py core        # prints the count; exits 1 when there is a cycle
"""

import ast, sys
from pathlib import Path
root = Path(sys.argv[1])  # folder containing the package tumorboard
mods = {}
for p in (root / "tumorboard").rglob("*.py"):
    rel = p.relative_to(root).with_suffix("")
    name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    mods[name] = p
def toplevel(tree):
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.If, ast.Try)):
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    yield sub
edges = {m: set() for m in mods}
for m, p in mods.items():
    pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
    for node in toplevel(ast.parse(p.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            if t in mods and t != m:
                edges[m].add(t)
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in mods:
    if v not in index: strong(v)
cyc = [sorted(c) for c in sccs if len(c) > 1]
print(len(mods), "modules,", len(cyc), "module-level import cycles", cyc)
sys.exit(1 if cyc else 0)
