"""How a source thread hands its batches to the collector's bounded queue."""

from __future__ import annotations

import threading
from queue import Full, Queue
from typing import Any


def hand_over(out: Queue[Any], item: object, stopping: threading.Event) -> bool:
    """Put `item` (None: "this source is done") into `out`, waiting while it is full: a full
    queue is how the collector pauses the reading. While stopping, a batch is given up instead
    (it was not stored, so it is read again at the next start); False then. None always goes."""
    while True:
        try:
            out.put(item, timeout=0.2)
            return True
        except Full:
            if stopping.is_set() and item is not None:
                return False
