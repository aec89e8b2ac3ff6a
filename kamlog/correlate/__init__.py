"""Joins log events with SIP messages into one timeline per call; clock.py resolves log time."""
