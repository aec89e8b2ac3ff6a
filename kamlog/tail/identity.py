"""Which file is this: device + inode, and a fingerprint of its first bytes.

Inodes are reused after a file is deleted, and copytruncate rewrites a file in place under the
same inode; the fingerprint of the first HEAD_SIZE bytes tells those apart. While a file is
shorter than HEAD_SIZE its fingerprint covers what there is, so it is written `"<n>:<hash>"`
with n the number of bytes covered: a later, longer head still matches when its first n bytes do.

So the identity of a file changes while it grows to HEAD_SIZE bytes and when it is rewritten:
state kept per file (a parser's pending record) belongs under `identity.key`, which does not.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Final

HEAD_SIZE: Final = 1024


def read_head(fd: int) -> bytes:
    """The first HEAD_SIZE bytes of an open file (fewer when it is shorter)."""
    return os.pread(fd, HEAD_SIZE, 0)


def _digest(head: bytes) -> str:
    return f"{len(head)}:{hashlib.blake2b(head, digest_size=16).hexdigest()}"


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A file as the tailer knows it: (device, inode) plus the fingerprint of its first bytes."""

    device: int
    inode: int
    fingerprint: str

    @classmethod
    def of(cls, st: os.stat_result, head: bytes) -> FileIdentity:
        """The identity of a file from its stat and its first bytes (see read_head)."""
        return cls(st.st_dev, st.st_ino, _digest(head[:HEAD_SIZE]))

    @property
    def key(self) -> tuple[int, int]:
        """(device, inode): what the registry and the follower index files by."""
        return (self.device, self.inode)

    @property
    def head_size(self) -> int:
        """How many first bytes the fingerprint covers."""
        return int(self.fingerprint.partition(":")[0])

    def matches(self, head: bytes) -> bool:
        """Whether a file whose first bytes are `head` still starts as this one did."""
        n = self.head_size
        return len(head) >= n and _digest(head[:n]) == self.fingerprint
