"""The ``corpus`` fixture: a generated corpus directory, made once per machine and reused.

The cache key is a hash of every file in tests/corpus/ (config, scenarios, runners, generator)
and of ``kamailio -v``: change any of them and the next session makes a new corpus. Corpora live
in pytest's cache directory (``.pytest_cache/d/kamlog-corpus/<key>``). A lock file keeps two
concurrent sessions from generating at once; a corpus is generated into a temporary directory
beside its final place and renamed into it only when complete, so an incomplete one is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LOCK_TIMEOUT = 600.0


def corpus_key() -> str:
    """Hash of every file in tests/corpus/ and of ``kamailio -v``."""
    h = hashlib.sha256()
    for path in sorted(HERE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            h.update(path.relative_to(HERE).as_posix().encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
    try:
        version = subprocess.run(["kamailio", "-v"], capture_output=True, timeout=30).stdout
    except FileNotFoundError:
        version = b"kamailio not installed"
    h.update(version)
    return h.hexdigest()[:20]


@contextmanager
def exclusive_lock(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, waited for at most ``timeout`` seconds."""
    with open(path, "a+b") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"another test session held {path} for more than {timeout:g}s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def cached_corpus(cache_root: Path) -> Path:
    """The corpus for the current key under ``cache_root``, generating it first if needed."""
    from tests.corpus.generate import generate

    key = corpus_key()
    final = cache_root / key
    if (final / "manifest.json").is_file():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(cache_root / "generate.lock"):
        if (final / "manifest.json").is_file():  # another session made it while we waited
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        try:
            generate(tmp)
            if final.exists():  # an incomplete leftover (no manifest): replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in cache_root.iterdir():  # corpora of older keys
            if old.is_dir() and old.name != key and not old.name.startswith("."):
                shutil.rmtree(old, ignore_errors=True)
    return final


@pytest.fixture(scope="session")
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a corpus directory made by tests/corpus/generate.py (see its manifest.json)."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir("kamlog-corpus") if cache is not None else tmp_path_factory.mktemp("kamlog-corpus")
    return cached_corpus(Path(root))
