"""The house rules that keep the code walkable: one `reasonfactory.*` namespace over the four
folders, imports that go down the layers and never in a circle, doctests that run, and modules
short enough to read (or listed in pyproject.toml as a data table or a grammar)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("flows", "generators", "filters", "warehouse", "rewards")
PACKAGES = tuple(f"reasonfactory.{f}" for f in FOLDERS)
# Started as a script in the sandbox's child process, never imported by the library.
SCRIPTS = {"reasonfactory.generators.verify.sandbox_child"}
LONG_MODULE_LINES = 400
# What house rule 16 lets be long; each reason says which of the two it is.
LONG_KINDS = ("data table:", "grammar:")


def _modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        names.append(pkg)
        names += [m.name for m in pkgutil.walk_packages(module.__path__, pkg + ".")]
    return sorted(names)


def test_pyproject_lists_every_package_under_its_namespace_name():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        "reasonfactory." + str(p.parent.relative_to(ROOT)).replace(os.sep, ".")
        for folder in FOLDERS
        for p in (ROOT / folder).rglob("__init__.py")
    }
    assert set(config["packages"]) == on_disk
    assert config["package-dir"] == {f"reasonfactory.{f}": f for f in FOLDERS}


def test_importing_a_package_changes_no_environment_variable():
    code = (
        "import os; before = dict(os.environ)\n"
        "import reasonfactory.flows, reasonfactory.flows.cli, reasonfactory.flows.generate\n"
        "import reasonfactory.filters.pipeline, reasonfactory.generators.registry\n"
        "keys = set(before) | set(os.environ)\n"
        "changed = {k for k in keys if before.get(k) != os.environ.get(k)}\n"
        "print(sorted(k for k in changed if not k.startswith('_')))"  # '_RJEM_...': polars'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def _graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=False)


def test_no_import_cycles():
    graph = _graph()
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # Tarjan's strongly connected components: any component of more than one module is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert cycles == []


@pytest.mark.parametrize(
    "importer,imported",
    [
        ("reasonfactory.generators", "reasonfactory.filters"),
        ("reasonfactory.generators", "reasonfactory.flows"),
        ("reasonfactory.filters", "reasonfactory.flows"),
        ("reasonfactory.warehouse", "reasonfactory.generators"),
        ("reasonfactory.warehouse", "reasonfactory.filters"),
        ("reasonfactory.warehouse", "reasonfactory.flows"),
        ("reasonfactory.generators.verify", "reasonfactory.generators.methods"),
        ("reasonfactory.generators.verify", "reasonfactory.generators.engines"),
        ("reasonfactory.generators.verify", "reasonfactory.generators.problems"),
        ("reasonfactory.generators.methods", "reasonfactory.generators.registry"),
        ("reasonfactory.filters", "reasonfactory.rewards"),
        ("reasonfactory.flows", "reasonfactory.rewards"),
    ],
)
def test_imports_go_down_the_layers(importer, imported):
    # The same contract as import-linter's in .ci/run, asserted here so a plain pytest run
    # catches it too.
    chain = _graph().find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, " -> ".join(chain)


def _long_modules_allowed() -> dict[str, str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["reasonfactory"]["long-modules"]


def _lines(path: Path) -> int:
    return path.read_text().count("\n")


def test_long_modules_are_split_or_listed_as_a_table_or_a_grammar():
    """House rule 16: a module over 400 lines is split, or pyproject.toml's reviewed
    `[tool.reasonfactory.long-modules]` lists it as a data table or a grammar. A docstring
    cannot excuse itself."""
    allowed = _long_modules_allowed()
    long = []
    for name in _modules():
        path = Path(importlib.util.find_spec(name).origin)
        rel = path.relative_to(ROOT).as_posix()
        if _lines(path) > LONG_MODULE_LINES and rel not in allowed:
            long.append(f"{rel} ({_lines(path)} lines)")
    assert long == [], (
        f"over {LONG_MODULE_LINES} lines: {', '.join(long)}; split them, or list a data table "
        "or a grammar under [tool.reasonfactory.long-modules] in pyproject.toml"
    )


def test_the_long_module_list_stays_short_and_true():
    allowed = _long_modules_allowed()
    assert len(allowed) <= 3, "house rule 16: split modules rather than list them"
    for rel, reason in allowed.items():
        assert (ROOT / rel).is_file(), f"{rel}: listed in pyproject.toml, not in the tree"
        assert _lines(ROOT / rel) > LONG_MODULE_LINES, f"{rel}: short now; unlist it"
        assert isinstance(reason, str) and reason.startswith(LONG_KINDS), (
            f"{rel}: the reason must start with one of {LONG_KINDS}, not {reason!r}"
        )


@pytest.mark.parametrize("name", [m for m in _modules() if m not in SCRIPTS])
def test_doctests(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed"


def test_the_wheel_installs_as_one_namespace(tmp_path):
    """A built wheel holds `reasonfactory/...` only: `import filters` / `import flows` do not
    resolve to us, and the CLI imports from a folder outside the checkout."""
    wheels = tmp_path / "wheels"
    # pyproject's `license = "Apache-2.0"` needs setuptools >= 70 (build-system.requires); a
    # venv made by `python -m venv` on 3.11 ships 65.5, so build in isolation when this one is
    # older (pip fetches the build requirements from the package index, as `pip install` does).
    from importlib.metadata import version

    recent = int(version("setuptools").split(".")[0]) >= 70
    no_isolation = ["--no-build-isolation"] if recent else []
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *no_isolation, "-q",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    wheel = next(wheels.glob("reasonfactory-*.whl"))
    import zipfile

    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"reasonfactory"}
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # The dependencies come from this environment's site-packages, appended to the path by a
    # .pth line (which does not run the editable install's finder found there).
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (site / "zz_deps.pth").write_text("\n".join(deps) + "\n")
    code = (
        "import importlib.util as u, reasonfactory.flows.cli as c\n"
        "print(c.__file__)\n"
        "print([n for n in ('filters', 'flows', 'generators', 'warehouse', 'rewards') "
        "if u.find_spec(n)])"
    )
    out = subprocess.run(
        [py, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr
    where, found = out.stdout.strip().splitlines()
    assert where.startswith(str(site)), where
    assert found == "[]"
