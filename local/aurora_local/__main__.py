"""``python -m aurora_local run|token|invoke`` (see :mod:`aurora_local.cli`)."""

from aurora_local.cli import main

if __name__ == "__main__":  # not when multiprocessing imports it in a function's worker
    raise SystemExit(main())
