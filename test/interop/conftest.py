"""Shared fixtures of the interop suite: transformers builds and saves the source models and target PLMs,
`salt-transfer transfer` (the CLI, as a user runs it) writes the outputs, transformers loads them.
Everything runs offline (no model hub)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
import torch  # noqa: E402

from models import SOURCES, TARGETS, build_source  # noqa: E402
from realdata import CLI, REPO  # noqa: E402

torch.set_num_threads(2)


def pytest_sessionstart(session) -> None:
    # build/interop-results.jsonl holds the measurements of the latest run only
    (REPO / "build" / "interop-results.jsonl").unlink(missing_ok=True)


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `node dist/cli.js ...` as a user would; returns the completed process."""
    r = subprocess.run(["node", str(CLI), *args], cwd=REPO, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"salt-transfer {' '.join(args)} exited with {r.returncode}:\n{r.stderr[-4000:]}")
    return r


class Captured:
    """Warnings from transformers' loggers and Python's warnings module during a block."""

    def __init__(self) -> None:
        self.records: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.records)

    def __repr__(self) -> str:
        return "\n".join(self.records)


@contextlib.contextmanager
def capture_warnings():
    cap = Captured()

    class H(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            cap.records.append(f"{record.name} {record.levelname}: {record.getMessage()}")

    handler = H(level=logging.WARNING)
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield cap
        cap.records += [f"{w.category.__name__}: {w.message}" for w in caught]
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def target_folder(work):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = TARGETS[name].folder(work)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def source_folder(work):
    """source_folder(name) -> the folder transformers saved the source family `name` into (built once)."""
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = work / f"source-{name}"
            build_source(SOURCES[name], cache[name], work)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def transferred(work, source_folder, target_folder):
    """transferred(source) -> {'source': folder, 'out': {target: folder}, 'reports': {target: report}}:
    the source built and saved by transformers, then one CLI run giving it every target's vocabulary."""
    cache: dict[str, dict] = {}

    def get(source: str) -> dict:
        if source not in cache:
            spec = SOURCES[source]
            src = source_folder(source)
            args = ["transfer", "--source", str(src), "--json", *spec.cli]
            outs = {}
            for t in TARGETS:
                outs[t] = work / f"out-{source}-{t}"
                args += ["--target", str(target_folder(t)), "--out", str(outs[t])]
            r = run_cli(*args)
            reports = json.loads(r.stdout)
            reports = reports if isinstance(reports, list) else reports.get("reports", [reports])
            cache[source] = {"source": src, "out": outs, "reports": dict(zip(TARGETS, reports))}
        return cache[source]

    return get
