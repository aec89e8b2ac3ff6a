"""Where correlated timelines are kept: the embedded SQLite store and Elasticsearch."""
