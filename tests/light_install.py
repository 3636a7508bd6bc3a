"""The ``tumorboard`` command as on a light install (``pip install tumorboard``, no extras).

The optional dependencies are installed in the test environment, so they are
blocked instead: ``sys.modules[name] = None`` makes every import of them fail
exactly as a missing package does. tests/test_light_install.py runs this file
in a subprocess; CI also checks a real light venv (docs/plugins.md).
"""

import sys

OPTIONAL = ("jax", "flax", "optax", "SimpleITK", "skimage", "nibabel", "isal", "shap", "matplotlib", "sksurv",
            "optuna", "ray", "h5py", "meds", "fhir")

for name in OPTIONAL:
    sys.modules[name] = None

from tumorboard._engine.cli import main  # noqa: E402

sys.argv = ["tumorboard", *sys.argv[1:]]
main()
