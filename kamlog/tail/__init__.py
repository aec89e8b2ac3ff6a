"""The file-tailing engine: follows files through rotation by offset and identity, knowing
nothing of what the lines say (Filebeat's scanner, watcher, harvester and registry)."""

from kamlog.tail.follower import Follower
from kamlog.tail.identity import FileIdentity
from kamlog.tail.items import IDLE, Chunk, Idle, Notice, NoticeKind
from kamlog.tail.offsets import tail_offset
from kamlog.errors import RegistryError
from kamlog.tail.registry import Registry

__all__ = [
    "IDLE",
    "Chunk",
    "FileIdentity",
    "Follower",
    "Idle",
    "Notice",
    "NoticeKind",
    "Registry",
    "RegistryError",
    "tail_offset",
]
