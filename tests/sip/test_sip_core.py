"""
The SIP core (L{resource_adaptors.sip.core}) is sans-IO: each of its
modules imports in a fresh interpreter where Twisted, slee, zope and every
module of the shell around the core cannot be imported.
"""

import pkgutil
import subprocess
import sys
import textwrap

import pytest

from resource_adaptors.sip import core

CORE_MODULES = sorted(f"{core.__name__}.{info.name}" for info in pkgutil.iter_modules(core.__path__))

# Run in the child: a finder that refuses what the core must not use, then the import.
_GUARDED_IMPORT = textwrap.dedent("""
    import sys

    FORBIDDEN = ("twisted", "slee", "zope", "autobahn")
    ALLOWED_HERE = ("resource_adaptors", "resource_adaptors.sip", "resource_adaptors.sip.core")

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            outside_core = (name.startswith("resource_adaptors.") and name not in ALLOWED_HERE
                            and not name.startswith("resource_adaptors.sip.core."))
            if top in FORBIDDEN or outside_core:
                raise ImportError(f"the SIP core imported {name}")
            return None

    sys.meta_path.insert(0, Refuse())
    __import__(sys.argv[1])
""")


def test_the_core_modules_are_found():
    assert {"resource_adaptors.sip.core.parser", "resource_adaptors.sip.core.routing",
            "resource_adaptors.sip.core.listen"} <= set(CORE_MODULES)


@pytest.mark.parametrize("module", CORE_MODULES)
def test_a_core_module_imports_neither_twisted_nor_slee_nor_the_shell(module):
    result = subprocess.run([sys.executable, "-c", _GUARDED_IMPORT, module],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_guard_refuses_what_it_should():
    """The guard can fail: the shell imports Twisted."""
    result = subprocess.run([sys.executable, "-c", _GUARDED_IMPORT,
                             "resource_adaptors.sip.transports"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "the SIP core imported" in result.stderr
