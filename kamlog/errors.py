"""Exceptions kamlog raises on purpose; each message is a sentence naming the bad value."""


class KamlogError(Exception):
    """Base of every error the CLI turns into one `Error: <sentence>` line."""

    exit_code = 1


class UsageError(KamlogError):
    """A command-line value is not acceptable (click's convention: exit code 2)."""

    exit_code = 2


class UnknownLevel(UsageError):
    """A log level name or number that Kamailio does not have."""


class GrammarError(KamlogError):
    """A grammar file in grammars/ is invalid; the message names the file and the position."""


class UnknownGrammar(UsageError):
    """--grammar names a grammar that does not exist."""


class NoLogFound(KamlogError):
    """No Kamailio log was given and none was found in the usual places."""


class SourceError(KamlogError):
    """A log source cannot be read (missing, unreadable, journalctl failed)."""


class RegistryError(KamlogError):
    """The registry of read offsets exists but cannot be read or written."""


class CaptureError(KamlogError):
    """A capture file cannot be read: missing, not a capture, or corrupt (the message names the
    file and, for a corrupt one, the byte offset)."""


class ConfigError(UsageError):
    """The service's configuration file is missing, not TOML, or has a bad key (named)."""


class SinkFull(KamlogError):
    """A sink cannot take more for now (the Elasticsearch spool is full): the service keeps the
    batch and pauses reading until it can."""
