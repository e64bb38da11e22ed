"""The layer the children run: the one sam build made, or a cached mimic of it."""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.common import ROOT, log


def build_layer(python: str, compiled: bool = True) -> Path:
    """The locked dependencies installed as the layer holds them, cached per requirements.txt + interpreter.

    ``compiled``: with ``.pyc`` (what a layer should ship); without, as ``sam build``'s python3.13 builder ships a
    layer (this repository builds its own instead: shared/Makefile) - and on Lambda ``/opt`` is read-only, so such a
    layer is compiled from source on every cold start.
    """
    requirements = ROOT / "shared" / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()[:12]
    layer = Path(tempfile.gettempdir()) / f"aurora-bench-layer-{digest}{'' if compiled else '-source'}"
    if (layer / ".complete").exists():
        return layer
    staging = Path(tempfile.mkdtemp(prefix="aurora-bench-layer-"))
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    log(f"building the layer in {layer} ...")
    if Path(uv).exists():
        command = [uv, "pip", "install", "--quiet", "--python", python, "--target", str(staging)]
        command += ["--no-deps", "-r", str(requirements)] + (["--compile-bytecode"] if compiled else [])
    else:
        command = [python, "-m", "pip", "install", "--quiet", "--target", str(staging)]
        command += ["--no-deps", "-r", str(requirements)] + ([] if compiled else ["--no-compile"])
    try:
        subprocess.run(command, check=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / ".complete").touch()
    shutil.rmtree(layer, ignore_errors=True)
    staging.rename(layer)
    return layer


def sam_built_layer() -> Path | None:
    """The layer ``sam build`` made (shared/Makefile: unchecked-hash ``.pyc``) for this machine's CPU, if one exists
    that holds exactly the pinned distributions of shared/requirements.txt: ``make smoke-build``'s twin for this
    architecture, else ``make build``'s. The bench then measures the dependencies as they ship."""
    machine = platform.machine()
    arch = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if arch is None:
        return None
    pins = {
        line.split(";")[0].strip().lower().replace("-", "_")
        for line in (ROOT / "shared" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    for candidate in (ROOT / ".aws-sam" / "smoke" / arch, ROOT / ".aws-sam" / "build"):
        layer = candidate / "SharedLayer" / "python"
        if not layer.is_dir():
            continue
        shipped = {
            "==".join(p.name.removesuffix(".dist-info").lower().split("-", 1))
            for p in layer.glob("*.dist-info")
        }
        native = {p.name for p in layer.rglob("*.so")}
        right_cpu = bool(native) and all(f"-{machine}-linux" in name for name in native)
        if shipped == pins and right_cpu:
            return layer
    return None


def source_only_shared() -> Path:
    """A copy of shared/ without any ``__pycache__`` (for the source-only layer)."""
    target = Path(tempfile.mkdtemp(prefix="aurora-bench-shared-"))
    shutil.copytree(
        ROOT / "shared" / "aurora_chats",
        target / "aurora_chats",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return target
