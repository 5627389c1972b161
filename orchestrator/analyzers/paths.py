"""Path rules shared by the analyzers; stdlib only, so a worker can use them cheaply."""

from __future__ import annotations

from pathlib import PurePosixPath


def is_test_file(path: str) -> bool:
    """`test_*.py`, `*_test.py`, or any .py file under a `tests/` directory (conftest.py excepted)."""
    pure = PurePosixPath(path.replace("\\", "/"))
    name = pure.name
    if not name.endswith(".py") or name == "conftest.py":
        return False
    return name.startswith("test_") or name.endswith("_test.py") or "tests" in pure.parts[:-1]
