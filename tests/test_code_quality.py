"""The code base's own rules, checked in every test run: imports run one way (the import-linter
contracts in pyproject.toml: the compiler imports no frontend or backend, frontends no backend,
nothing below the API imports it), no import cycle between snnc's modules at the top level of
files, and ruff's checks (syntax errors, undefined or unused names)."""
import ast
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def _run(*cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts():
    p = _run(os.path.join(BIN, "lint-imports"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "0 broken" in p.stdout


def test_ruff():
    p = _run(os.path.join(BIN, "ruff"), "check", "snnc", "tests", "examples", "benchmarks", "scripts")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]


def _top_level_imports(path, module):
    """snnc modules imported at the top level of ``path`` (not inside functions: lazy ones)."""
    tree = ast.parse(open(path).read())
    pkg = module.rsplit(".", 1)[0] if not path.endswith("__init__.py") else module
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("snnc"):
                out.add(name)
                out.update(f"{name}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("snnc"))
    return out


def test_no_import_cycle_at_module_level():
    mods = {}
    for d, _, files in os.walk(os.path.join(ROOT, "snnc")):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                mods[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = path
    deps = {m: {i for i in _top_level_imports(p, m) if i in mods and i != m} for m, p in mods.items()}
    state, cycle = {}, []

    def visit(m, stack):
        state[m] = 1
        for d in sorted(deps[m]):
            if state.get(d) == 1:
                cycle.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m, [m])
    assert not cycle, f"import cycles at module level: {cycle[:3]}"


def test_no_test_file_imports_another():
    """Shared test code lives in helper modules and conftest.py (README "Tests"), never in a test file."""
    here = os.path.dirname(os.path.abspath(__file__))
    tests = {f[:-3] for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py")}
    bad = []
    for name in sorted(tests):
        for node in ast.walk(ast.parse(open(os.path.join(here, name + ".py")).read())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            bad += [f"{name}.py:{node.lineno} imports {m}" for m in mods
                    if m.split(".")[-1] in tests or m.startswith("tests.")]
    assert not bad, bad
