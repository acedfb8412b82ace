"""A worker's log file, capped in size: the runtime names it (``LOG_ENV``) and points the
worker's stdout and stderr at it; the worker logs into it through ``RotatingOutput``, which
moves it to ``<log>.1`` past ``LOG_MAX_ENV`` bytes (default ``DEFAULT_MAX_BYTES``) and points
stdout and stderr at the new file too, so that nothing the process prints (a traceback, a
library's warning) is written past the cap."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_ENV = "DACIRCO_WORKER_LOG"
LOG_MAX_ENV = "DACIRCO_WORKER_LOG_MAX_BYTES"
DEFAULT_MAX_BYTES = 10 * 10**6  # and one older piece: at most about 20 MB a worker


class RotatingOutput(RotatingFileHandler):
    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=1, encoding="utf-8")

    def doRollover(self) -> None:
        super().doRollover()
        if self.stream is not None:
            self.stream.flush()
            fd = self.stream.fileno()
            for target in (1, 2):
                os.dup2(fd, target)


def output_handler(environ: Mapping[str, str]) -> logging.Handler | None:
    """The capped log the runtime named, or None (log to stderr as is)."""
    path = environ.get(LOG_ENV)
    if not path:
        return None
    try:
        max_bytes = int(environ.get(LOG_MAX_ENV, DEFAULT_MAX_BYTES))
    except ValueError:
        max_bytes = DEFAULT_MAX_BYTES
    try:
        return RotatingOutput(Path(path), max(max_bytes, 0))
    except OSError:
        return None
