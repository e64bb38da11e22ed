"""Import a function's ``app.py`` as a module of its own: every function's module is called ``app``.

The one loader the local runtime, the tests and the bench share (the bench's isolated child processes excepted:
they run with nothing but the layer on ``sys.path``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_module(path: Path, module_name: str, *, register: bool = True) -> ModuleType:
    """Execute ``path`` as ``module_name`` (registered in ``sys.modules`` unless ``register=False``)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
