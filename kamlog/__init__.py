"""kamlog: follow, parse and correlate Kamailio logs with the SIP packets they are about."""

__version__ = "0.1.0"
