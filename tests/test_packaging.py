"""
Packaging: a plain, non-editable ``pip install .`` into a fresh virtual
environment installs the twistd drop-in, so that ``twistd slee --help`` works
from any directory.

To stay fast and offline, the fresh venv does not download slee's
dependencies: its site-packages is filled with links to the site-packages of
the interpreter running the tests, minus every file of an installed slee (the
README's test command installs one there: it must not make this test pass).
``twisted/`` and ``twisted/plugins/`` are real directories in the new venv,
so pip puts the plugin exactly where it would in a real install.  slee itself
is then built from a copy of the source tree (no stale build/ directory) with
this environment's setuptools and installed with pip, non-editable.

Also: the README's test command is the one .ci/run runs.
"""

import importlib.metadata
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300  # seconds, for any one subprocess

OPTIONS = [
    "--var=", "--db=", "--deploy-dir=", "--admin=", "--config=",
    "--batch-max=", "--cache-size=", "--log-level=",
]

# Not part of the distribution, or made by builds and runs.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
    "*.pyc", "var", ".pytest_cache", "dropin.cache", "twistd.pid", "twistd.log",
)


def _site_dirs() -> list[Path]:
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dirs += site.getsitepackages()
    seen, result = set(), []
    for d in dirs:
        p = Path(d).resolve()
        if p.is_dir() and p not in seen:
            seen.add(p)
            result.append(p)
    return result


def _installed_slee_files() -> set[Path]:
    """Every file an installed slee distribution owns, wherever it is."""
    hidden = set()
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name != "slee":
            continue
        for f in dist.files or ():
            path = Path(os.path.abspath(dist.locate_file(f)))
            hidden.add(Path(os.path.realpath(path.parent)) / path.name)
    return hidden


def _overlay(src: Path, dst: Path, hidden: set[Path]):
    """Make dst look like src: links to src's entries, except hidden files;
    a directory holding a hidden file (or twisted/plugins) is rebuilt as a
    real directory, and left out if nothing else is in it.  __pycache__,
    dropin.cache and any slee_plugin.py (say, a developer's link to the
    drop-in) are left out."""
    dst.mkdir(exist_ok=True)
    for child in sorted(src.iterdir()):
        target = dst / child.name
        if child in hidden or child.name in ("__pycache__", "dropin.cache", "slee_plugin.py"):
            continue
        if target.exists() or target.is_symlink():
            continue  # an earlier site directory wins, as on sys.path
        must_copy = child.is_dir() and (
            child.name in ("twisted", "plugins")
            or any(h.is_relative_to(child) for h in hidden)
        )
        if must_copy:
            _overlay(child, target, hidden)
            if not any(target.iterdir()):
                target.rmdir()
        else:
            target.symlink_to(child, target_is_directory=child.is_dir())


def run(argv, *, cwd, env, check=True):
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        pytest.fail(f"{argv} exited {result.returncode}:\n{result.stdout}")
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with slee pip-installed (non-editable) from a copy of
    the source tree.  Returns (venv, site-packages, env, a scratch cwd)."""
    base = tmp_path_factory.mktemp("packaging")

    source = base / "source"
    shutil.copytree(ROOT, source, ignore=IGNORED, symlinks=True)
    # Probes for the package-finding rules: a DU directory that is not a
    # Python package (dash in its name) with a descriptor, an SBB package
    # with a .toml, and an empty directory.
    probe_du = source / "deployables" / "packaging-probe"
    probe_du.mkdir(parents=True)
    (probe_du / "slee.toml").write_text('name = "packaging-probe"\n')
    probe_sbb = source / "sbbs" / "packaging_probe"
    probe_sbb.mkdir(parents=True)
    (probe_sbb / "__init__.py").write_text("")
    (probe_sbb / "probe.toml").write_text("x = 1\n")
    (source / "resource_adaptors" / "packaging_empty").mkdir(parents=True)

    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base, env=os.environ)
    python = venv / "bin" / "python"
    site_packages = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=base,
            env=os.environ,
        ).stdout.strip()
    )
    hidden = _installed_slee_files()
    for d in _site_dirs():
        _overlay(d, site_packages, hidden)
    # Twisted's own console script, as pip would have written it.
    twistd = venv / "bin" / "twistd"
    twistd.write_text(
        f"#!{python}\nimport sys\nfrom twisted.scripts.twistd import run\nsys.exit(run())\n"
    )
    twistd.chmod(0o755)

    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_REQUIRE"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    scratch = base / "elsewhere"
    scratch.mkdir()

    run(
        [
            str(python), "-m", "pip", "install",
            "--no-deps", "--no-build-isolation", "--no-index", "--no-compile",
            str(source),
        ],
        cwd=scratch,
        env=env,
    )
    return venv, site_packages, env, scratch


def test_plugin_installed_into_twisted_plugins(installed):
    venv, site_packages, env, scratch = installed
    plugin = site_packages / "twisted" / "plugins" / "slee_plugin.py"
    assert plugin.is_file() and not plugin.is_symlink()
    assert "ServiceMaker" in plugin.read_text()
    assert not (site_packages / "twistd_plugins").exists()


def test_distribution_contents(installed):
    venv, site_packages, env, scratch = installed
    record = next(site_packages.glob("slee-*.dist-info/RECORD")).read_text()
    files = {line.split(",")[0] for line in record.splitlines()}
    assert "twisted/plugins/slee_plugin.py" in files
    # Twisted owns these; we must not ship or overwrite them.
    assert "twisted/__init__.py" not in files
    assert "twisted/plugins/__init__.py" not in files
    assert "slee/__init__.py" in files
    assert "slee/settings.py" in files
    assert "slee/tap.py" in files
    assert "deployables/packaging-probe/slee.toml" in files
    assert "deployables/xcap-remote/deployable.toml" in files  # shipped, not deployed by default
    assert "sbbs/packaging_probe/probe.toml" in files
    assert not any(f.startswith(("tests/", "bench/", "twistd_plugins/")) for f in files)
    assert (venv / "bin" / "slee").is_file()  # console script


def test_slee_comes_from_the_new_venv(installed):
    venv, site_packages, env, scratch = installed
    out = run(
        [
            str(venv / "bin" / "python"), "-c",
            "import slee, slee.tap, twisted.plugins.slee_plugin as p; "
            "print(slee.__file__); print(p.__file__)",
        ],
        cwd=scratch,
        env=env,
    ).stdout.split()
    assert [Path(f).parent for f in out] == [
        site_packages / "slee",
        site_packages / "twisted" / "plugins",
    ]


def test_twistd_lists_slee(installed):
    venv, site_packages, env, scratch = installed
    out = run([str(venv / "bin" / "twistd"), "--help"], cwd=scratch, env=env).stdout
    assert re.search(r"^\s+slee\s+\S", out, re.M), out


def test_twistd_slee_help_from_any_directory(installed):
    venv, site_packages, env, scratch = installed
    out = run([str(venv / "bin" / "twistd"), "slee", "--help"], cwd=scratch, env=env).stdout
    for option in OPTIONS:
        assert option in out, out


def test_twistd_slee_rejects_a_bad_value_naming_the_option(installed):
    venv, site_packages, env, scratch = installed
    result = run(
        [str(venv / "bin" / "twistd"), "-n", "slee", "--batch-max", "0"],
        cwd=scratch,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "--batch-max: must be an integer from 1 to 10000" in result.stdout
    assert not (scratch / "var").exists()


# -- README and CI --------------------------------------------------------


def readme_commands() -> list[str]:
    """The README's opening commands: the first fenced block's lines."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"^```[a-z]*\n(.*?)^```", text, re.M | re.S)
    assert block, "README.md has no command block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    commands = readme_commands()
    assert len(commands) == 2, commands
    install_and_start, install_and_test = commands
    assert "pip install ." in install_and_start and "twistd -n slee" in install_and_start
    assert "pip install '.[test]'" in install_and_test and "pytest" in install_and_test
    assert "-e" not in install_and_start.split()
    assert "-e" not in install_and_test.split()


def test_ci_runs_exactly_the_readme_test_command():
    test_command = readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in [line.strip() for line in ci.splitlines()], (
        f"{test_command!r} is not a line of .ci/run"
    )
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
