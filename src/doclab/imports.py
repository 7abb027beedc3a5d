"""doclab's own import graph, read from the source with `ast` (nothing is imported or run).

    files = import_closure("doclab.pipeline.train_classifier")   # every src file that stage code runs
    graph = import_graph()                                       # module -> the doclab modules it imports

One source of truth for three things that must never drift apart: a stage's `dvc.yaml` deps
(`doclab deps` writes them), its resume fingerprint (`code_files`), and the layer contract
(tests/test_architecture.py). Imports inside functions count: they run when the code does.
"""
from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT_PACKAGE = "doclab"


def module_file(module: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The file of a dotted doclab module (`doclab.a.b` -> a/b.py or a/b/__init__.py), or None."""
    base = package_dir.joinpath(*module.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py") if base != package_dir else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, package_dir: Path) -> str:
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([ROOT_PACKAGE, *parts])


def _with_parents(module: str) -> list[str]:
    """`doclab.a.b` -> [doclab, doclab.a, doclab.a.b]: importing a module runs its packages' __init__ first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported_modules(path: Path, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The doclab modules a source file imports (module level and inside functions).

    `from doclab.a import b` counts as `doclab.a.b` when b is a submodule, else as `doclab.a`.
    Relative imports are resolved against the file's own package.
    """
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    own = _module_name(Path(path).resolve(), package_dir) if Path(path).resolve().is_relative_to(package_dir) else ""
    own_package = own if Path(path).name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == ROOT_PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = own_package.split(".")[: len(own_package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != ROOT_PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if module_file(sub, package_dir) else base)
    return {m for m in found if module_file(m, package_dir)}


@cache
def import_graph(package_dir: Path = PACKAGE_DIR) -> dict[str, frozenset[str]]:
    """Every doclab module -> the doclab modules it imports directly (package __init__s included)."""
    graph = {}
    for path in sorted(package_dir.rglob("*.py")):
        direct = {parent for m in imported_modules(path, package_dir) for parent in _with_parents(m)}
        name = _module_name(path, package_dir)
        graph[name] = frozenset(direct - {name})
    return graph


def module_closure(start: set[str], package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The modules that importing every module of `start` runs, `start` included."""
    graph = import_graph(package_dir)
    seen: set[str] = set()
    todo = [p for m in start for p in _with_parents(m)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def script_closure(script: str | Path, package_dir: Path = PACKAGE_DIR) -> set[str]:
    """The doclab modules a script outside the package (a `stages/*.py`) runs."""
    return module_closure(imported_modules(Path(script), package_dir), package_dir)


def code_files(module: str, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The source files of `module`'s import closure, sorted: what a resume fingerprint must hash."""
    return sorted(module_file(m, package_dir) for m in module_closure({module}, package_dir))


# The layers, lowest first. A module may import its own group and any group below it, nothing above;
# the groups of one layer (detection, classification) do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("doclab", "doclab.errors", "doclab.io", "doclab.imports", "doclab.processes"),
    ("doclab.config",),
    ("doclab.data",),
    ("doclab.metrics",),
    ("doclab.engine",),
    ("doclab.detection", "doclab.classification"),
    ("doclab.plots", "doclab.deploy"),
    ("doclab.pipeline",),
    ("doclab.predict",),
    ("doclab.experiments",),
    ("doclab.cli",),
)
BASICS = "basics"


def group_of(module: str) -> tuple[int, str]:
    """(layer index, group) of a module; the top-level files of layer 0 form one group, 'basics'."""
    for index, groups in enumerate(LAYERS):
        for group in groups:
            if module == group or module.startswith(group + ".") and group != ROOT_PACKAGE:
                return index, BASICS if index == 0 else group
    raise KeyError(f"{module}: in no layer of doclab.imports.LAYERS: add it there")


def layer_violations(graph: dict[str, frozenset[str]]) -> list[str]:
    """One line per import that goes up a layer or sideways into a sibling group."""
    found = []
    for module, imported in sorted(graph.items()):
        layer, group = group_of(module)
        for target in sorted(imported):
            target_layer, target_group = group_of(target)
            if target_group != group and target_layer >= layer:
                way = "upward" if target_layer > layer else "sideways"
                found.append(f"{module} imports {target} ({way}: layer {layer} -> {target_layer})")
    return found


def import_cycles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """Cycles of module imports (package __init__ -> own submodule edges left out), each as a path."""
    def edges(module: str) -> list[str]:
        return [t for t in graph.get(module, ()) if not t.startswith(module + ".")]

    cycles, state = [], {}  # state: 1 on the stack, 2 done
    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(edges(module)):
            if state.get(target) == 1:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack)
        stack.pop()
        state[module] = 2
    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    return cycles


def _compressed(files: set[Path], package_dir: Path) -> list[str]:
    """Folders whose every source file is in `files` stand for them; other files are listed one by one."""
    entries: list[Path] = []
    def walk(folder: Path) -> None:
        every = {p for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
        if every and every <= files and folder != package_dir:
            entries.append(folder)
            return
        entries.extend(p for p in sorted(folder.glob("*.py")) if p in files)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "__pycache__"):
            walk(sub)
    walk(package_dir)
    return sorted(str(p.relative_to(package_dir.parent.parent)) for p in entries)


def stage_code_deps(script: str | Path, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The `dvc.yaml` deps that cover exactly the doclab code a stage script runs (paths from the repo root)."""
    files = {module_file(m, package_dir) for m in script_closure(script, package_dir)}
    return _compressed(files, package_dir)


def covered(deps: list[str], files: set[Path], root: Path) -> set[Path]:
    """The files of `files` that some dep (a file or a folder, relative to `root`) covers."""
    dep_paths = [(root / d).resolve() for d in deps]
    return {f for f in files if any(f == d or f.is_relative_to(d) for d in dep_paths)}
