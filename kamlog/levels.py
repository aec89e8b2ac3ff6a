"""Kamailio's log levels: names, numbers, syslog severities and the colours `kamailio -e` uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .errors import UnknownLevel


@dataclass(frozen=True, slots=True)
class Level:
    """One Kamailio level, as in core/dprint.h and the `log_level_info` table of core/dprint.c."""

    number: int
    name: str  # what Kamailio prints; L_CRIT prints an empty name
    macro: str  # the xlog / cfg name, e.g. L_ERR
    syslog_severity: int
    ansi: str  # SGR parameters of `kamailio -e`'s default colour for the level


LEVELS: Final[tuple[Level, ...]] = (
    Level(-5, "ALERT", "L_ALERT", 1, "1;31"),
    Level(-4, "BUG", "L_BUG", 2, "1;35"),
    Level(-3, "CRITICAL", "L_CRIT2", 2, "0;33"),
    Level(-2, "", "L_CRIT", 2, "0;34"),
    Level(-1, "ERROR", "L_ERR", 3, "0;31"),
    Level(0, "WARNING", "L_WARN", 4, "0;35"),
    Level(1, "NOTICE", "L_NOTICE", 5, "0;32"),
    Level(2, "INFO", "L_INFO", 6, "0;36"),
    Level(3, "DEBUG", "L_DBG", 7, "0;39"),
)

BY_NUMBER: Final[dict[int, Level]] = {lv.number: lv for lv in LEVELS}
# Names as Kamailio prints them (and as the JSON engine writes them) -> number.
NUMBER_OF_NAME: Final[dict[str, int]] = {lv.name: lv.number for lv in LEVELS}

_ALIASES: Final[dict[str, int]] = {
    **{lv.name: lv.number for lv in LEVELS if lv.name},
    **{lv.macro[2:]: lv.number for lv in LEVELS},
    "CRIT": -2,
    "CRIT2": -3,
    "ERR": -1,
    "WARN": 0,
    "DBG": 3,
    "EMERG": -5,
}


def level_names() -> str:
    """The accepted spellings, for error messages and --help."""
    return ", ".join(f"{lv.macro[2:]} ({lv.number})" for lv in LEVELS)


def parse_level(text: str) -> int:
    """Turn a user's level (`ERR`, `error`, `L_ERR`, `-1`, `WARN`, `DBG`) into Kamailio's number."""
    word = text.strip().upper()
    if word.startswith("L_"):
        word = word[2:]
    try:
        number = int(word)
    except ValueError:
        number_or_none = _ALIASES.get(word)
        if number_or_none is None:
            raise UnknownLevel(
                f"unknown log level {text!r}; valid levels are {level_names()}"
            ) from None
        return number_or_none
    if number not in BY_NUMBER:
        raise UnknownLevel(
            f"unknown log level {text!r}; valid levels are {level_names()}"
        )
    return number
