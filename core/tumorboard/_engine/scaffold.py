"""``tumorboard plugins new``: a plugin package that installs and passes its own tests at once.

The package is what a third party publishes: a pyproject with the entry
point, one component, a test that runs tumorboard's conformance kit on it,
and a README. The component is small but real (it learns from training
patients only and saves its state without pickle), a starting point to edit.
"""

from __future__ import annotations

import keyword
import re
import textwrap
from pathlib import Path

from .errors import TumorboardError

KINDS = ("model", "modality", "fusion", "explainer")
HOOK = {"model": "register_models", "modality": "register_modalities", "fusion": "register_fusions",
        "explainer": "register_explainers"}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")

COMPONENTS = {
    "model": '''
        import numpy as np
        from pydantic import Field

        from tumorboard.api import FeatureBlock, Model, Options, Target


        class {cls}(Model):
            """Ridge regression on the fused features: probabilities clipped to [0, 1] for binary tasks."""

            name = "{component}"
            tasks = frozenset({{"binary", "regression"}})

            class Options(Options):
                penalty: float = Field(1.0, gt=0, description="Ridge penalty on the weights (larger: smoother).")

            def fit(self, X: FeatureBlock, y: Target) -> "{cls}":
                if len(X.ids) != len(y):
                    raise ValueError(f"{{self.name}}: {{len(X.ids)}} patients but {{len(y)}} target values")
                values = np.nan_to_num(X.values.astype(np.float64))
                self.mean_ = values.mean(axis=0)
                centred = values - self.mean_
                target = y.values.astype(np.float64)
                self.offset_ = float(target.mean())
                gram = centred.T @ centred + self.options.penalty * np.eye(centred.shape[1])
                self.weights_ = np.linalg.solve(gram, centred.T @ (target - self.offset_))
                self.binary_ = y.kind == "binary"
                return self

            def predict(self, X: FeatureBlock) -> np.ndarray:
                self.check_is_fitted()
                if X.values.shape[1] != len(self.weights_):
                    raise ValueError(f"{{self.name}}: fitted on {{len(self.weights_)}} features, got {{X.values.shape[1]}}")
                z = (np.nan_to_num(X.values.astype(np.float64)) - self.mean_) @ self.weights_ + self.offset_
                return np.clip(z, 0.0, 1.0) if self.binary_ else z
    ''',
    "modality": '''
        from collections.abc import Sequence

        import numpy as np
        import polars as pl
        from pydantic import Field

        from tumorboard.api import FeatureBlock, InputPath, Modality, Options, Target, check_unique_ids, read_table


        class {cls}(Modality):
            """Numeric columns of a CSV or Parquet table (one row per patient), scaled on training patients."""

            name = "{component}"
            tasks = frozenset({{"binary", "multiclass", "regression", "survival"}})

            class Options(Options):
                path: InputPath = Field(description="CSV, TSV or Parquet table with one row per patient.")
                id_column: str = Field("patient_id", description="The column holding patient ids.")

            def _table(self) -> pl.DataFrame:
                table = read_table(self.options.path, self.options.id_column)
                check_unique_ids(table, self.options.id_column, self.options.path)
                return table

            def available_ids(self) -> set[str]:
                return set(self._table()[self.options.id_column].to_list())

            def _rows(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
                table = self._table()
                columns = [c for c, t in table.schema.items() if c != self.options.id_column and t.is_numeric()]
                index = {{pid: i for i, pid in enumerate(table[self.options.id_column].to_list())}}
                values = table.select(columns).to_numpy().astype(np.float64)
                rows = np.full((len(ids), len(columns)), np.nan)
                present = np.array([pid in index for pid in ids], dtype=bool)
                rows[present] = values[[index[pid] for pid in ids if pid in index]]
                return rows, present, columns

            def fit(self, ids: Sequence[str], y: Target) -> "{cls}":
                if len(ids) != len(y):
                    raise ValueError(f"{{self.name}}: {{len(ids)}} patients but {{len(y)}} target values")
                rows, present, columns = self._rows(ids)
                train = rows[present]  # training patients only: nothing learned from anyone else
                self.columns_ = columns
                self.mean_ = np.nanmean(train, axis=0) if len(train) else np.zeros(len(columns))
                scale = np.nanstd(train, axis=0) if len(train) else np.ones(len(columns))
                self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
                self.mean_ = np.where(np.isfinite(self.mean_), self.mean_, 0.0)
                return self

            def transform(self, ids: Sequence[str]) -> FeatureBlock:
                self.check_is_fitted()
                rows, present, columns = self._rows(ids)
                if columns != list(self.columns_):
                    raise ValueError(f"{{self.name}}: the table's columns changed since fit ({{self.options.path}})")
                values = (rows - self.mean_) / self.scale_
                values[~present] = np.nan  # absent patients carry no information
                names = tuple(f"{modality}:{{c}}" for c in columns)
                return FeatureBlock(tuple(ids), values, names, present, "{modality}")
    ''',
    "fusion": '''
        from collections.abc import Sequence

        import numpy as np

        from tumorboard.api import FeatureBlock, Fusion, Target


        class {cls}(Fusion):
            """Concatenates the blocks, scaled on training patients, with absent or missing values set to 0."""

            name = "{component}"
            tasks = frozenset({{"binary", "multiclass", "regression", "survival"}})

            def fit(self, blocks: Sequence[FeatureBlock], y: Target) -> "{cls}":
                if any(len(block.ids) != len(y) for block in blocks):
                    raise ValueError(f"{{self.name}}: {{len(blocks[0].ids)}} patients but {{len(y)}} target values")
                means, scales = [], []
                for block in blocks:
                    train = block.values[block.presence].astype(np.float64)
                    mean = np.nanmean(train, axis=0) if len(train) else np.zeros(block.values.shape[1])
                    scale = np.nanstd(train, axis=0) if len(train) else np.ones(block.values.shape[1])
                    means.append(np.where(np.isfinite(mean), mean, 0.0))
                    scales.append(np.where(np.isfinite(scale) & (scale > 0), scale, 1.0))
                self.means_ = np.concatenate(means)
                self.scales_ = np.concatenate(scales)
                self.names_ = [n for block in blocks for n in block.feature_names]
                return self

            def transform(self, blocks: Sequence[FeatureBlock]) -> FeatureBlock:
                self.check_is_fitted()
                names = [n for block in blocks for n in block.feature_names]
                if names != list(self.names_):
                    raise ValueError(f"{{self.name}}: fitted on other features than it is given")
                parts = []
                for block in blocks:
                    values = block.values.astype(np.float64).copy()
                    values[~block.presence] = np.nan
                    parts.append(values)
                values = np.nan_to_num((np.concatenate(parts, axis=1) - self.means_) / self.scales_)
                sources = tuple(block.modality for block in blocks for _ in block.feature_names)
                return FeatureBlock(blocks[0].ids, values, tuple(names), np.ones(len(blocks[0].ids), bool),
                                    "fused", sources)
    ''',
    "explainer": '''
        from collections.abc import Sequence

        import numpy as np

        from tumorboard.api import Attribution, Explainer, FeatureBlock, Model, Target


        class {cls}(Explainer):
            """Occlusion: how much each feature moves the prediction when set to its mean, averaged over patients."""

            name = "{component}"
            tasks = frozenset({{"binary", "regression", "survival"}})

            def explain(self, model: Model, X: FeatureBlock, feature_names: Sequence[str],
                        y: Target | None = None) -> Attribution:
                base = np.asarray(model.predict(X), dtype=np.float64).reshape(len(X.ids), -1)[:, -1]
                means = np.nanmean(X.values, axis=0)
                effects = np.zeros((len(X.ids), len(feature_names)))
                for j in range(len(feature_names)):
                    occluded = X.values.copy()
                    occluded[:, j] = means[j]
                    moved = FeatureBlock(X.ids, occluded, X.feature_names, X.presence, X.modality, X.sources)
                    changed = np.asarray(model.predict(moved), dtype=np.float64).reshape(len(X.ids), -1)[:, -1]
                    effects[:, j] = base - changed
                return Attribution(method=self.name, feature_names=tuple(feature_names),
                                   importance=np.abs(effects).mean(axis=0))
    ''',
}

INIT = '''
    """{summary}"""

    from tumorboard.api import hookimpl

    from .component import {cls}

    __all__ = ["{cls}"]


    @hookimpl
    def {hook}(register):
        """Hand tumorboard this plugin's {kind}."""
        register({cls})
'''

PYPROJECT = '''
    [build-system]
    requires = ["setuptools>=69"]
    build-backend = "setuptools.build_meta"

    [project]
    name = "{dist}"
    version = "0.1.0"
    description = "{summary}"
    readme = "README.md"
    requires-python = ">=3.11"
    dependencies = ["tumorboard"]

    [project.optional-dependencies]
    test = ["pytest>=8"]

    # how tumorboard finds the plugin: the `tumorboard` entry-point group
    [project.entry-points.tumorboard]
    {ep} = "{package}"

    [tool.setuptools.packages.find]
    where = ["src"]
'''

TEST = '''
    """tumorboard's conformance kit on this plugin's {kind}: the checks every {kind} must pass."""

    {imports}

    from tumorboard.testing import check_component, parametrize_with_checks

    from {package} import {cls}

    {fixture}


    @parametrize_with_checks([{instance}])
    def test_follows_the_component_contract(component, check):
        check(component)


    def test_is_registered_through_its_entry_point():
        from importlib.metadata import entry_points

        (found,) = [ep for ep in entry_points(group="tumorboard") if ep.name == "{ep}"]
        assert found.load().{cls} is {cls}
        check_component({instance})
'''

MODALITY_FIXTURE = '''
    HERE = Path(__file__).parent
    TABLE = HERE / "example.csv"
    if not TABLE.exists():  # a small table with a planted signal in two columns, written once
        rng = np.random.default_rng(0)
        ids = [f"P{i:03d}" for i in range(120)]
        pl.DataFrame({"patient_id": ids, "marker_a": rng.normal(size=120), "marker_b": rng.normal(size=120),
                      "noise": rng.normal(size=120)}).write_csv(TABLE)
'''

README = '''
    # {dist}

    {summary}

    A tumorboard plugin providing the {kind} `{component}`. Install it next to
    tumorboard and it is found through its entry point; a run spec uses it with

    ```toml
    {spec}
    ```

    ## Develop

    ```bash
    pip install -e ".[test]"
    python -m pytest -q        # tumorboard's conformance kit on the component
    tumorboard plugins         # lists {component}
    ```

    To list it in tumorboard's plugin directory, open a pull request adding a
    table for it to tumorboard's registry.toml; `tumorboard registry check KEY`
    verifies the entry against this installed package.
'''

SPEC = {
    "model": '[model]\nplugin = "{component}"\noptions = {{ penalty = 1.0 }}',
    "modality": '[[modality]]\nname = "{modality}"\nplugin = "{component}"\noptions = {{ path = "table.csv" }}',
    "fusion": '[fusion]\nplugin = "{component}"',
    "explainer": '[[explainer]]\nplugin = "{component}"',
}


def _write(path: Path, template: str, **values: str) -> None:
    # templates and multi-line values are written indented here; each is dedented on its own
    values = {k: textwrap.dedent(v).strip("\n") if "\n" in v else v for k, v in values.items()}
    text = textwrap.dedent(template).lstrip("\n").format(**values)
    text = re.sub(r"\n{4,}", "\n\n\n", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def new_plugin(kind: str, name: str, where: Path) -> Path:
    """Write the package for a ``kind`` plugin called ``name`` into ``where/tumorboard-NAME``; return it."""
    if kind not in KINDS:
        raise TumorboardError(f"--kind {kind!r}: choose one of {', '.join(KINDS)}")
    if not NAME.match(name) or keyword.iskeyword(name):
        raise TumorboardError(f"plugin name {name!r}: use lower-case letters, digits and underscores, starting with "
                              "a letter (it becomes the component's name and the package tumorboard_NAME)")
    dist, package = f"tumorboard-{name.replace('_', '-')}", f"tumorboard_{name}"
    root = Path(where) / dist
    if root.exists():
        raise TumorboardError(f"{root} already exists; nothing was written (choose another name or folder)")
    component = {"model": f"model.{name}", "fusion": f"fusion.{name}", "explainer": f"explain.{name}",
                 "modality": f"{name}.table"}[kind]
    cls = "".join(part.capitalize() for part in name.split("_")) + kind.capitalize()
    summary = f"A tumorboard {kind} plugin: {component}."
    values = dict(kind=kind, name=name, dist=dist, package=package, component=component, cls=cls, summary=summary,
                  hook=HOOK[kind], ep=name, modality=name)
    _write(root / "src" / package / "component.py", '"""The {kind} {component}."""\n\nfrom __future__ import annotations\n\n'
           + textwrap.dedent(COMPONENTS[kind]).lstrip("\n"), **values)
    _write(root / "src" / package / "__init__.py", INIT, **values)
    _write(root / "pyproject.toml", PYPROJECT, **values)
    modality = kind == "modality"
    _write(root / "tests" / f"test_{name}.py", TEST, **values,
           imports="from pathlib import Path\n\nimport numpy as np\nimport polars as pl\n" if modality else "",
           fixture=MODALITY_FIXTURE if modality else "",
           instance=f"{cls}(path=TABLE)" if modality else f"{cls}()")
    spec = SPEC[kind].format(component=component, modality=name)
    _write(root / "README.md", README, **values, spec=spec)
    return root


__all__ = ["KINDS", "new_plugin"]
