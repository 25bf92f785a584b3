"""Integration tests: database, queue, workers, storage."""
