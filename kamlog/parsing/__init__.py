"""Turns Kamailio log lines into LogEvents with grammars declared in grammars/, compiled once."""
