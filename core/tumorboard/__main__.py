"""``python -m tumorboard`` is the ``tumorboard`` command."""

from ._engine.cli import main

if __name__ == "__main__":
    main()
