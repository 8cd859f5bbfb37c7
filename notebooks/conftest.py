"""`pytest --nbmake` runs each notebook as a smoke run (`INSTAGAN_SMOKE=1`, a few minutes at most on
2 CPU cores) unless the environment says otherwise; the kernels inherit this environment."""

import os

import pytest

os.environ.setdefault("INSTAGAN_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """The notebook smoke runs (minutes each) are marked `slow`: the README's test command,
    `-m "not slow"`, leaves them to `-m slow` (which CI runs after it)."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
