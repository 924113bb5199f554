"""
The import graph of the product code: no cycles, and no layer importing
one above it.  The layers, from the bottom: C{slee} (the container), the
SIP core (C{resource_adaptors.sip.core}, sans-IO), the resource adaptors,
the services (C{sbbs}), the deployable units.  Every import counts, those
inside functions too: a cycle deferred to run time is a cycle still.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGES = ("slee", "resource_adaptors", "sbbs", "deployables", "twistd_plugins")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    """@return: module name -> the set of product modules it imports."""
    paths = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    names = {_module_name(path): path for path in paths}
    graph = {}
    for name, path in names.items():
        imported = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in names:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    imported.add(target)
        graph[name] = imported
    return graph


GRAPH = _modules()


def _importers_of(prefixes, below):
    """The imports from modules under C{below} of modules under C{prefixes}."""
    return sorted((name, target) for name, targets in GRAPH.items()
                  if name == below or name.startswith(below + ".")
                  for target in targets if target.startswith(prefixes))


def test_the_container_imports_nothing_above_it():
    assert _importers_of(("sbbs", "resource_adaptors", "deployables", "twistd_plugins"),
                         "slee") == []


def test_the_sip_core_imports_neither_twisted_nor_the_container():
    core = ROOT / "resource_adaptors" / "sip" / "core"
    if not core.exists():
        pytest.skip("no SIP core package yet")
    offending = []
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            offending += [(path.name, name) for name in names
                          if name.split(".")[0] in ("twisted", "slee", "zope")
                          or (name.startswith("resource_adaptors")
                              and not name.startswith("resource_adaptors.sip.core"))]
    assert offending == []


def test_resource_adaptors_import_no_service():
    assert _importers_of(("sbbs", "deployables"), "resource_adaptors") == []


def _cycles():
    """Tarjan's strongly connected components of more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = iter(range(len(GRAPH) * 2))

    def visit(node):
        index[node] = low[node] = next(counter)
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert _cycles() == []
