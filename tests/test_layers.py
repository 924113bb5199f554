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


#: The modules of the XDMS package an XDM client uses: the client SBB, and
#: what it reads change notifications (xcap-diff) and refusals with.  The
#: rest (the server, the application usages, node selection, the XDMS's own
#: notifier) is the XDMS's inside.
XDM_CLIENT_SIDE = {"sbbs.xdms", "sbbs.xdms.client", "sbbs.xdms.changes", "sbbs.xdms.errors",
                   "sbbs.xdms.safexml", "sbbs.xdms.xcapdiff"}


def test_the_standalone_presence_server_loads_no_xdms_internals():
    """
    The presence-server profile (the presence server with a remote XDMS)
    reaches the XDMS only through the XDM client: a process that imports
    every class its units name loads nothing else of the XDMS.
    """
    import subprocess
    import sys
    import tomllib

    profiles = tomllib.loads((ROOT / "deployables" / "profiles.toml").read_text())
    classes = []
    for unit in profiles["presence-server"]["units"]:
        descriptor = tomllib.loads((ROOT / "deployables" / unit / "deployable.toml").read_text())
        for kind in ("sbbs", "ra-entities"):
            classes += [entry["class"] for entry in descriptor.get(kind, ())]
    assert any(name.startswith("sbbs.presence.") for name in classes)
    script = ("import importlib, sys\n"
              f"for name in {sorted({name.split(':')[0] for name in classes})!r}:\n"
              "    importlib.import_module(name)\n"
              "print(*sorted(m for m in sys.modules if m.startswith('sbbs.xdms')))\n")
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=60).stdout.split()
    assert "sbbs.xdms.client" in loaded
    assert set(loaded) <= XDM_CLIENT_SIDE, sorted(set(loaded) - XDM_CLIENT_SIDE)


#: Past this many lines a product module says at its top why it is one.
LONG_MODULE = 600


def test_long_modules_say_why_they_are_one():
    """
    A module of one concern reads from the top down; past about 600 lines
    it must say, in its docstring ("Why one module..."), why cutting it
    would cost more than it gives.
    """
    unexplained = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            if text.count("\n") > LONG_MODULE:
                docstring = ast.get_docstring(ast.parse(text)) or ""
                if "Why one module" not in docstring:
                    unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
