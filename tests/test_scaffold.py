"""`tumorboard plugins new` writes a package that installs and passes its own tests at once.

Each test does what a plugin author does: generate, `pip install -e`, run the
package's tests, then see the plugin listed by `tumorboard plugins`. The
install goes into a throwaway virtual environment layered over this one (a
.pth file adds this environment's site-packages), so the test environment's
own entry points never change.
"""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tumorboard._engine.errors import TumorboardError
from tumorboard._engine.scaffold import KINDS, new_plugin


def layered_venv(folder: Path) -> Path:
    venv.EnvBuilder(with_pip=False).create(folder)
    python = folder / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # `import` lines of a .pth file run at start-up: addsitedir also processes the parent's own .pth files
    # (tumorboard's editable install)
    Path(target, "parent-env.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents), encoding="utf-8")
    return python


def run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(python), *args], capture_output=True, text=True, encoding="utf-8", cwd=cwd,
                            timeout=600)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def scaffold_install_and_test(tmp_path: Path, kinds: tuple[str, ...]) -> None:
    python = layered_venv(tmp_path / "env")
    packages = {kind: run(python, "-m", "tumorboard", "plugins", "new", f"my_{kind}", "--kind", kind,
                          "--dir", str(tmp_path), cwd=tmp_path) and tmp_path / f"tumorboard-my-{kind}" for kind in kinds}
    editable = [arg for root in packages.values() for arg in ("-e", str(root))]
    run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", *editable,
        cwd=tmp_path)
    for kind, root in packages.items():
        result = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=root)
        assert " passed" in result.stdout and "failed" not in result.stdout, result.stdout
    listed = json.loads(run(python, "-m", "tumorboard", "plugins", "--json", cwd=tmp_path).stdout)
    names = {name for family in listed["components"].values() for name in family}
    expected = {"model": "model.my_model", "modality": "my_modality.table", "fusion": "fusion.my_fusion",
                "explainer": "explain.my_explainer"}
    assert {expected[k] for k in kinds} <= names


@pytest.mark.slow  # a virtual environment, four editable installs and four test runs: about 40 s on 2 cores
def test_every_kind_of_new_plugin_installs_and_passes_its_own_tests(tmp_path):
    scaffold_install_and_test(tmp_path, KINDS)


def test_a_new_plugin_package_is_complete_and_its_component_passes_the_kit(tmp_path):
    """The quick half of the slow test: the files are there, the entry point names the package, and the
    component (imported from the written source) passes tumorboard's conformance kit."""
    import importlib.util
    import tomllib

    from tumorboard.testing import check_component

    root = new_plugin("model", "ridge", tmp_path)
    assert {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} == {
        "pyproject.toml", "README.md", "src/tumorboard_ridge/__init__.py", "src/tumorboard_ridge/component.py",
        "tests/test_ridge.py"}
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["entry-points"]["tumorboard"] == {"ridge": "tumorboard_ridge"}
    spec = importlib.util.spec_from_file_location("tumorboard_ridge_component", root / "src/tumorboard_ridge/component.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        check_component(module.RidgeModel())
    finally:
        sys.modules.pop(spec.name, None)


def test_the_scaffold_refuses_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(TumorboardError, match="lower-case"):
        new_plugin("model", "My-Model", tmp_path)
    with pytest.raises(TumorboardError, match="choose one of"):
        new_plugin("reporter", "x", tmp_path)
    new_plugin("model", "x", tmp_path)
    with pytest.raises(TumorboardError, match="already exists"):
        new_plugin("model", "x", tmp_path)
