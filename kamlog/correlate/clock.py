"""Log time: turns the timestamp text of each log format into an aware datetime.

RFC 3164 (traditional syslog) timestamps have neither year nor zone. A `Clock` supplies them:
from the user (`--year`, `--tz`) or inferred (the year of the file's modification time, this
machine's zone), and says which in `Clock.assumption` so the CLI can tell the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Final

from ..errors import UsageError

MONTHS: Final[dict[str, int]] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_zone(name: str) -> tzinfo:
    """`UTC`, `Europe/Berlin`, `+01:00`, `local`: a tzinfo, or UsageError naming the value."""
    if name.lower() == "local":
        return local_zone()
    from dateutil import tz as dateutil_tz  # only here: its import costs more than a parse

    zone = dateutil_tz.gettz(name)
    if zone is None:
        try:
            offset = datetime.strptime(name.replace(":", ""), "%z").utcoffset()
        except ValueError:
            raise UsageError(
                f"unknown time zone {name!r}; use a name like UTC or Europe/Berlin, or an offset like +01:00"
            ) from None
        assert offset is not None
        return timezone(offset)
    return zone


def local_zone() -> tzinfo:
    """This machine's zone, which is what rsyslog writes RFC 3164 timestamps in."""
    from dateutil import tz as dateutil_tz

    return dateutil_tz.tzlocal()


@dataclass(slots=True)
class Clock:
    """Completes RFC 3164 timestamps with a year and a zone."""

    year: int | None = None  # None: infer from `reference`, with the December/January rollover
    zone: tzinfo = field(default_factory=local_zone)
    reference: datetime | None = None  # the newest time the log can have (its file's mtime)
    assumption: str | None = None  # what was inferred, in words; None when the user gave both
    _last_text: str | None = field(default=None, repr=False)
    _last_value: datetime | None = field(default=None, repr=False)

    @classmethod
    def for_file(cls, path: str | None, year: int | None, zone: str | None) -> Clock:
        tzi = parse_zone(zone) if zone else local_zone()
        reference: datetime | None = None
        if path is not None:
            try:
                reference = datetime.fromtimestamp(os.stat(path).st_mtime, tzi)
            except OSError:
                reference = None
        if reference is None:
            reference = datetime.now(tzi)
        guessed = []
        if year is None:
            guessed.append(f"the year from {'the file modification time' if path else 'today'} ({reference.year})")
        if zone is None:
            guessed.append(f"this machine's time zone ({datetime.now(tzi).strftime('%Z %z')})")
        assumption = " and ".join(guessed) if guessed else None
        return cls(year=year, zone=tzi, reference=reference, assumption=assumption)

    def rfc3164(self, text: str | None) -> datetime | None:
        """`Nov 28 09:40:01` (day space-padded) -> aware datetime; None when it is not one."""
        if text is None:
            return None
        # A log's timestamps go forward, one second at a time: the last one is a good cache.
        if text == self._last_text:
            return self._last_value
        value = self._rfc3164(text)
        self._last_text, self._last_value = text, value
        return value

    def _rfc3164(self, text: str) -> datetime | None:
        try:
            month = MONTHS[text[0:3]]
            day = int(text[4:6])
            hour, minute, second = int(text[7:9]), int(text[10:12]), int(text[13:15])
            micro = 0
            if len(text) > 16 and text[15] == ".":
                micro = int(text[16:22].ljust(6, "0"))
            year = self.year
            if year is None:
                ref = self.reference or datetime.now(self.zone)
                year = ref.year
                # A December line in a file last written in January belongs to the year before.
                if month > ref.month + 1:
                    year -= 1
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=self.zone)
        except (KeyError, ValueError):
            return None


def rfc3339(text: str | None) -> datetime | None:
    """RFC 3339 / ISO 8601 with any number of fractional digits (nanoseconds are truncated)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


def epoch_us(text: str | int | None) -> datetime | None:
    """Microseconds since the epoch (journald's __REALTIME_TIMESTAMP) -> UTC datetime."""
    if text is None:
        return None
    try:
        return _EPOCH + timedelta(microseconds=int(text))
    except (ValueError, OverflowError):
        return None
