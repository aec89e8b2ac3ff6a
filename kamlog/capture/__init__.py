"""Captures (pcap, pcapng, gzip, HEP) turned into the transport payloads that carry SIP."""
