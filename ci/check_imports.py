#!/usr/bin/env python3
"""Imports run one way: fail on a new upward import or a new import cycle between packages.

The layer order of ``mindsponge_mm`` (lowest first; DESIGN.md, "Seams and layers")::

    units, errors, io_utils, config, registry, runtime, kernel_build, the package root
      -> batch, nn, so3 -> neighbors -> data -> potentials, models
      -> train, md, interfaces -> generative -> jobs -> cli

A *unit* is a top-level module (``batch.py``) or a subpackage (``data/``). Every ``import`` and
``from ... import`` of every module is read with :mod:`ast` (module level, inside functions and
classes, under ``if``/``try``; relative and absolute). Nothing of the package is imported or run,
so this script needs neither MindSpore nor the lock that MindSpore processes take.

Two kinds of violation:

* **upward**: a module of a lower layer imports a module of a higher layer;
* **cycle**: units that import each other in a loop (a strongly connected component of the unit
  graph), within one layer or across layers. A cycle that grows is a new cycle.

Today's violations are listed in :data:`ALLOWED_UPWARD` and :data:`ALLOWED_CYCLES`, each with the
reason and the change that removes it. The check exits 1 when

* an import runs upward and is not listed (matched by importing file and imported module; the
  line in the list is for the reader and may drift, which is reported as a note), or a cycle
  appears that is not listed;
* a listed violation no longer exists (so the list shrinks as the code improves: delete the entry);
* a unit has no layer (add it to :data:`LAYERS`), or an import names a module of the package that
  does not exist (it could not run, and the check cannot place its edge).

Not seen: imports made with ``importlib`` or ``__import__`` (the package has none today).

Usage: ``python ci/check_imports.py [--package DIR] [--quiet]``. Exit 0 = pass, 1 = violation.
"""
from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = "(root)"  # the unit of the package's own __init__.py

# Lowest first. Units of one layer may import each other (a loop among them is still a cycle).
LAYERS: list[tuple[str, ...]] = [
    ("units", "errors", "io_utils", "config", "registry", "runtime", "kernel_build", ROOT),
    ("batch", "nn", "so3"),
    ("neighbors",),
    ("data",),
    ("potentials", "models"),
    ("train", "md", "interfaces"),
    ("generative",),
    ("jobs", "job_schema"),
    ("cli",),
]


@dataclass(frozen=True)
class Allowed:
    """One of today's upward imports: ``where`` is FILE:LINE (lines drift), ``imports`` the module."""

    where: str
    imports: str
    reason: str

    @property
    def file(self) -> str:
        return self.where.rsplit(":", 1)[0]

    @property
    def line(self) -> int:
        return int(self.where.rsplit(":", 1)[1])


# Today's upward imports (2026-12-06). Each reason says why it is there and what removes it
# (issue 18, "one contract per seam"). Delete an entry when its import is gone: the check fails
# on a stale entry, so this list only shrinks.
ALLOWED_UPWARD: tuple[Allowed, ...] = (
)

# Today's cycles between units (2026-12-06): the sorted units of each strongly connected
# component of the unit graph, with what removes it. A cycle that grows, shrinks or splits no
# longer matches its entry: update the entry (the table shows the imports that close it).
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {
}


# ----------------------------------------------------------------------------------------------
# reading the package


@dataclass(frozen=True)
class Import:
    """``module`` (dotted) imports ``target`` (dotted, the most specific module of the package) at ``line``."""

    file: str  # the importing file, relative to the repository, e.g. mindsponge_mm/batch.py
    module: str
    line: int
    target: str
    scope: str  # "module" (runs at import time) or "function" (runs when the function is called)


def discover(package_dir: Path) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its ``__init__.py``)."""
    package_dir = package_dir.resolve()
    name = package_dir.name
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if any(not p.isidentifier() for p in parts):
            continue
        if parts[0] != name:
            continue
        modules[".".join(parts)] = path
    return modules


def _resolve_relative(module: str, is_package: bool, level: int, base: str | None) -> str:
    """The absolute module named by ``from <level dots><base> import ...`` inside ``module``."""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a plain module's "." is its package
    if level - 1 > len(parts) - 1:
        raise ValueError(f"relative import beyond the top-level package in {module}")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    if base:
        parts += base.split(".")
    return ".".join(parts)


class _Collector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, modules: dict[str, Path], file: str):
        self.module, self.is_package, self.modules, self.file = module, is_package, modules, file
        self.package = module.split(".")[0]
        self.depth = 0  # > 0 inside a function body
        self.found: list[Import] = []
        self.unresolved: list[Import] = []  # imports of modules of the package that do not exist

    def _add(self, line: int, name: str, target: str | None) -> None:
        """``name`` as written (absolute); ``target`` the module of the package it loads, None if none does."""
        if name.split(".")[0] != self.package:
            return  # not ours
        scope = "function" if self.depth else "module"
        if target is None:
            self.unresolved.append(Import(self.file, self.module, line, name, scope))
        else:
            self.found.append(Import(self.file, self.module, line, target, scope))

    def _function(self, node) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(node.lineno, alias.name, alias.name if alias.name in self.modules else None)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = _resolve_relative(self.module, self.is_package, node.level, node.module)
        else:
            base = node.module or ""
        for alias in node.names:
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one, else a name of pkg
            candidate = f"{base}.{alias.name}"
            if candidate in self.modules:
                self._add(node.lineno, candidate, candidate)
            else:
                self._add(node.lineno, base, base if base in self.modules else None)


def collect(package_dir: Path, repo: Path | None = None) -> tuple[dict[str, Path], list[Import], list[Import]]:
    """All modules of the package, their imports of the package, and those that name no module of it."""
    package_dir = Path(package_dir).resolve()
    repo = (repo or package_dir.parent).resolve()
    modules = discover(package_dir)
    imports: list[Import] = []
    unresolved: list[Import] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        collector = _Collector(module, path.name == "__init__.py", modules, path.relative_to(repo).as_posix())
        collector.visit(tree)
        imports += collector.found
        unresolved += collector.unresolved
    # one row per (file, line, imported module): ``from .x import a, b`` is one import
    order = lambda i: (i.file, i.line, i.target, i.scope)  # noqa: E731
    return modules, sorted(set(imports), key=order), sorted(set(unresolved), key=order)


def unit_of(module: str) -> str:
    """``pkg.data.loader`` -> ``data``; ``pkg.batch`` -> ``batch``; ``pkg`` -> the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def layer_index(layers: list[tuple[str, ...]] = LAYERS) -> dict[str, int]:
    return {unit: k for k, layer in enumerate(layers) for unit in layer}


def cycles(imports: list[Import]) -> list[tuple[str, ...]]:
    """Strongly connected components (more than one unit) of the unit graph, each sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        a, b = unit_of(imp.module), unit_of(imp.target)
        graph.setdefault(a, set())
        graph.setdefault(b, set())
        if a != b:
            graph[a].add(b)
    # Tarjan's algorithm, iterative
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(tuple(sorted(component)))
    return sorted(found)


# ----------------------------------------------------------------------------------------------
# checking


@dataclass
class Report:
    upward: list[tuple[Import, Allowed | None]] = field(default_factory=list)  # (import, its entry or None = new)
    stale_upward: list[Allowed] = field(default_factory=list)
    cycles: list[tuple[tuple[str, ...], str | None, list[Import]]] = field(default_factory=list)
    stale_cycles: list[tuple[str, ...]] = field(default_factory=list)
    unknown_units: list[tuple[str, str]] = field(default_factory=list)  # (unit, file)
    unresolved: list[Import] = field(default_factory=list)  # target: the module name as written
    notes: list[str] = field(default_factory=list)

    @property
    def new_upward(self) -> list[Import]:
        return [imp for imp, entry in self.upward if entry is None]

    @property
    def new_cycles(self) -> list[tuple[str, ...]]:
        return [c for c, reason, _ in self.cycles if reason is None]

    @property
    def ok(self) -> bool:
        return not (self.new_upward or self.new_cycles or self.stale_upward or self.stale_cycles
                    or self.unknown_units or self.unresolved)


def check(package_dir: Path = REPO / "mindsponge_mm", allowed_upward=ALLOWED_UPWARD, allowed_cycles=None,
          layers: list[tuple[str, ...]] = LAYERS, repo: Path | None = None) -> Report:
    """Read the package and compare its upward imports and cycles with the allowlists."""
    allowed_cycles = ALLOWED_CYCLES if allowed_cycles is None else allowed_cycles
    package_dir = Path(package_dir).resolve()
    rank = layer_index(layers)
    report = Report()
    modules, imports, report.unresolved = collect(package_dir, repo)

    for module, path in modules.items():
        unit = unit_of(module)
        if unit not in rank:
            report.unknown_units.append((unit, str(path)))
    report.unknown_units = sorted(set(report.unknown_units))

    by_key = {(a.file, a.imports): a for a in allowed_upward}
    used: set[tuple[str, str]] = set()
    for imp in sorted(imports, key=lambda i: (i.file, i.line, i.target)):
        src, dst = unit_of(imp.module), unit_of(imp.target)
        if src == dst or src not in rank or dst not in rank or rank[src] >= rank[dst]:
            continue
        entry = by_key.get((imp.file, imp.target))
        if entry is not None:
            used.add((entry.file, entry.imports))
        report.upward.append((imp, entry))
    report.stale_upward = [a for a in allowed_upward if (a.file, a.imports) not in used]
    for entry in allowed_upward:
        lines = sorted(i.line for i, e in report.upward if e is entry)
        if lines and entry.line not in lines:
            report.notes.append(f"{entry.where} imports {entry.imports} now at line(s) "
                                f"{', '.join(map(str, lines))}: update the line in the allowlist")

    allowed = {tuple(sorted(k)): v for k, v in allowed_cycles.items()}
    present = cycles(imports)
    for component in present:
        members = set(component)
        closing = sorted((i for i in imports
                          if unit_of(i.module) in members and unit_of(i.target) in members
                          and unit_of(i.module) != unit_of(i.target)),
                         key=lambda i: (i.file, i.line, i.target))
        # a listed cycle that lost members is still listed (its entry is then stale, below)
        reason = allowed.get(component) or next((r for c, r in allowed.items() if members < set(c)), None)
        report.cycles.append((component, reason, closing))
    # stale: a listed cycle that is not there as listed, unless it grew into a new cycle (failing already)
    report.stale_cycles = [c for c in allowed if c not in present
                           and not any(set(c) < set(p) for p in present)]
    return report


# ----------------------------------------------------------------------------------------------
# printing


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def render(report: Report, layers: list[tuple[str, ...]] = LAYERS) -> str:
    rank = layer_index(layers)
    out: list[str] = []
    out.append("layers (lowest first): " + " -> ".join(", ".join(layer) for layer in layers))
    out.append("")
    if report.upward:
        rows = [(f"{imp.file}:{imp.line}", f"{unit_of(imp.module)} ({rank[unit_of(imp.module)]})",
                 f"{imp.target}", f"{unit_of(imp.target)} ({rank[unit_of(imp.target)]})", imp.scope,
                 "allowed" if entry else "NEW")
                for imp, entry in report.upward]
        out.append(f"upward imports: {len(report.upward)} "
                   f"({len(report.new_upward)} new)")
        out.append(_table(rows, ("where", "from (layer)", "imports", "to (layer)", "runs at", "status")))
    else:
        out.append("upward imports: none")
    out.append("")
    if report.cycles:
        out.append(f"cycles between units: {len(report.cycles)} ({len(report.new_cycles)} new)")
        for component, reason, closing in report.cycles:
            out.append(f"  {' <-> '.join(component)}: {'allowed' if reason else 'NEW'}")
            for imp in closing:
                out.append(f"      {imp.file}:{imp.line}  {unit_of(imp.module)} -> {imp.target}  ({imp.scope})")
    else:
        out.append("cycles between units: none")
    problems: list[str] = []
    for imp in report.new_upward:
        problems.append(f"NEW upward import {imp.file}:{imp.line}: {unit_of(imp.module)} imports {imp.target} "
                        f"(layer {rank[unit_of(imp.module)]} -> {rank[unit_of(imp.target)]}); import downward "
                        f"only, or move the code to the layer where it belongs")
    for component in report.new_cycles:
        problems.append(f"NEW cycle between {', '.join(component)}: break it (see the imports listed above)")
    for entry in report.stale_upward:
        problems.append(f"allowlisted upward import {entry.where} -> {entry.imports} is gone: delete its entry "
                        f"from ALLOWED_UPWARD in ci/check_imports.py")
    for component in report.stale_cycles:
        problems.append(f"allowlisted cycle {', '.join(component)} is gone or smaller: delete its entry in "
                        f"ALLOWED_CYCLES in ci/check_imports.py, or list the cycle that is left")
    for imp in report.unresolved:
        problems.append(f"{imp.file}:{imp.line} imports {imp.target}, which is no module of the package: "
                        f"an import that cannot run is an edge the check cannot place")
    for unit, path in report.unknown_units:
        problems.append(f"{path}: unit {unit!r} has no layer; add it to LAYERS in ci/check_imports.py")
    if report.notes:
        out.append("")
        out += [f"note: {n}" for n in report.notes]
    out.append("")
    if problems:
        out += [f"FAIL: {p}" for p in problems]
    else:
        out.append(f"import order: OK ({len(report.upward)} allowlisted upward imports, "
                   f"{len(report.cycles)} allowlisted cycles)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, default=REPO / "mindsponge_mm", help="the package directory")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict and the failures")
    args = parser.parse_args(argv)
    report = check(args.package)
    text = render(report)
    if args.quiet:
        text = "\n".join(line for line in text.splitlines() if line.startswith(("FAIL", "import order")))
    print(text)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
