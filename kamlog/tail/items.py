"""What a Follower yields: Chunk (bytes of one file), Notice (for the operator) and Idle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from kamlog.tail.identity import FileIdentity

NoticeKind = Literal[
    "following", "waiting", "rotated", "truncated", "deleted", "created", "reopened", "error"
]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes read from one file, starting at `offset`.

    `data` holds whole lines (it ends with b"\\n") unless `partial` is true. A partial chunk is one
    piece of one line: the unterminated last line of a file that is read for the last time
    (no-follow, or a rotated file closed for good), or a piece of a line longer than
    max_line_bytes (the line's last piece then starts the next, non-partial, chunk).
    `path` is the name the file was opened by, even after it was renamed. `identity` is the
    file's as of this read: its fingerprint grows while the file is under 1 KiB, so keep
    per-file state under `identity.key`, and acknowledge `end` with `identity` to a Registry.
    """

    path: str
    identity: FileIdentity
    offset: int
    data: bytes
    partial: bool = False

    @property
    def end(self) -> int:
        """The offset just after this chunk: what a consumer acknowledges once it is processed."""
        return self.offset + len(self.data)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something an operator should know (a rotation, a missing file, an over-long line)."""

    path: str
    kind: NoticeKind
    message: str


@dataclass(frozen=True, slots=True)
class Idle:
    """A poll found nothing new: consumers may flush what they hold (multi-line records)."""


IDLE: Final = Idle()
