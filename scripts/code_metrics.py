"""Code metrics of ``snnc/`` at a git revision (or the work tree): the closing note's numbers.

``python scripts/code_metrics.py [REV ...]`` prints, per revision: lines of ``snnc/**/*.py``;
functions and classes over 60 lines; the longest function; and the modules outside the allowed
ones that walk graph edges (a call of ``.predecessors(``/``.successors(`` or a read of ``.edges``),
with the functions that do. Allowed: the IR and its passes (``compiler/ir.py``, ``passes.py``,
``validate.py``), the lowering (``lower.py``), the graph rewrite ``fold.py``, the serializers of the
graph itself (``artifact.py``, ``printing.py``, ``backends/nir_export.py``: NIR is a graph of the
same nodes, written edge for edge), the importers (``frontends/``: they build graphs) and
``backends/reference_spec.py`` (the independent oracle keeps its own walk of the graph).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = ("snnc/compiler/ir.py", "snnc/compiler/passes.py", "snnc/compiler/validate.py", "snnc/compiler/lower.py",
           "snnc/compiler/fold.py", "snnc/compiler/artifact.py", "snnc/compiler/printing.py",
           "snnc/backends/nir_export.py", "snnc/backends/reference_spec.py")
ALLOWED_DIRS = ("snnc/frontends/",)
LONG = 60


def _files(rev: str) -> Dict[str, str]:
    """{path: source} of every ``snnc/**/*.py`` at ``rev`` ("" = the work tree)."""
    if not rev:
        return {str(p.relative_to(ROOT)): p.read_text() for p in sorted((ROOT / "snnc").rglob("*.py"))}
    names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", rev, "snnc/"],
                           check=True, capture_output=True, text=True).stdout.split()
    return {n: subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{n}"], check=True, capture_output=True,
                              text=True).stdout for n in names if n.endswith(".py")}


def _walks(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr in ("predecessors", "successors", "edges"):
            return True
    return False


def _defs(tree: ast.AST) -> List[Tuple[str, ast.AST]]:
    """(qualified name, node) of every function and class, nested ones included."""
    out: List[Tuple[str, ast.AST]] = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                q = f"{prefix}{child.name}"
                out.append((q, child))
                visit(child, q + ".")
            else:
                visit(child, prefix)
    visit(tree, "")
    return out


def _allowed(path: str) -> bool:
    return path in ALLOWED or path.startswith(ALLOWED_DIRS)


def metrics(rev: str) -> Dict:
    lines, long_defs, longest, walkers = 0, [], ("", "", 0), {}
    for path, src in _files(rev).items():
        lines += src.count("\n")
        tree = ast.parse(src)
        for q, d in _defs(tree):
            n = d.end_lineno - d.lineno + 1
            if n > LONG:
                long_defs.append((n, f"{path}:{q}", isinstance(d, ast.ClassDef)))
            if not isinstance(d, ast.ClassDef) and n > longest[2]:
                longest = (path, q, n)
        if not _allowed(path):
            fns = [q for q, d in _defs(tree) if not isinstance(d, ast.ClassDef) and _walks(d)
                   and not any(isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef)) and _walks(c)
                               for c in ast.iter_child_nodes(d))]
            if fns or _walks(tree):
                walkers[path] = fns or ["<module>"]
    return dict(lines=lines, long=sorted(long_defs, reverse=True), longest=longest, walkers=walkers)


def report(rev: str) -> str:
    m = metrics(rev)
    funcs = [d for d in m["long"] if not d[2]]
    classes = [d for d in m["long"] if d[2]]
    rows = [f"== {rev or 'work tree'} ==",
            f"lines of snnc/: {m['lines']}",
            f"functions over {LONG} lines: {len(funcs)}; classes over {LONG} lines: {len(classes)}",
            f"longest function: {m['longest'][0]}:{m['longest'][1]} ({m['longest'][2]} lines)",
            f"modules walking graph edges outside the allowed ones: {len(m['walkers'])} "
            f"({sum(len(v) for v in m['walkers'].values())} functions)"]
    rows += [f"  {p}: {', '.join(v)}" for p, v in sorted(m["walkers"].items())]
    rows += [f"  long function: {n:4d} {name}" for n, name, _ in funcs[:6]]
    rows += [f"  long class:    {n:4d} {name}" for n, name, _ in classes[:6]]
    return "\n".join(rows)


if __name__ == "__main__":
    print("\n\n".join(report(r) for r in (sys.argv[1:] or [""])))
