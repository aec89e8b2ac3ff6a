"""Where events end up: the console, JSON lines, and (later) the embedded store and Elasticsearch."""
