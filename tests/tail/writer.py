"""A log writer that behaves like rsyslog, for the rotation tests: run as its own process.

It appends numbered lines, one write(2) each, at a steady rate to a descriptor opened with
O_APPEND, and keeps writing to that descriptor until it is told to reopen the path (SIGHUP, as
logrotate's postrotate does for rsyslog); it then writes for --reopen-delay more seconds to the
old descriptor, as a real writer would, before reopening.

    python writer.py PATH --first 0 --count 600 --rate 300
"""

from __future__ import annotations

import argparse
import os
import signal
import time


def line(n: int, width: int = 100) -> bytes:
    """The text of line number n: 'line 00000042 xxxx...' padded to `width` bytes with its newline."""
    text = f"line {n:08d} "
    return (text + "x" * max(0, width - len(text) - 1) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--reopen-delay", type=float, default=0.1)
    args = parser.parse_args()

    hup_at: list[float] = []
    signal.signal(signal.SIGHUP, lambda *_: hup_at.append(time.monotonic()))
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    fd = os.open(args.path, flags, 0o644)
    began = time.monotonic()
    for i in range(args.count):
        if hup_at and time.monotonic() >= hup_at[0] + args.reopen_delay:
            hup_at.clear()
            os.close(fd)
            fd = os.open(args.path, flags, 0o644)
        os.write(fd, line(args.first + i, args.width))
        delay = began + (i + 1) / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    os.close(fd)


if __name__ == "__main__":
    main()
