"""``functions/<name>/app.py`` as a module, loaded once per process (every function's module is called ``app``)."""

from __future__ import annotations

from types import ModuleType

from aurora_local.loader import load_module

from tests.support.env import ROOT

_loaded: dict[str, ModuleType] = {}


def load_function(name: str) -> ModuleType:
    """The function's module, imported on first use and kept (one execution environment per function)."""
    if name not in _loaded:
        _loaded[name] = load_module(ROOT / "functions" / name / "app.py", f"functions_{name}_app")
    return _loaded[name]


def fresh_function(name: str, module_name: str) -> ModuleType:
    """A new import of the function (a new execution environment), not registered in ``sys.modules``."""
    return load_module(ROOT / "functions" / name / "app.py", module_name, register=False)
