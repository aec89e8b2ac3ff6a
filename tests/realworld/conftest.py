"""The real-world tests: real Kamailio, rsyslog, journald, SIPp and logrotate around `kamlog tail`."""
