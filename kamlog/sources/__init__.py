"""Where log lines come from: files (through the tail engine) and the systemd journal."""
