"""Storing a finished dissection: its media files, its artifacts folder, then its rows in one transaction."""

from app.persistence.store.run import BeforeCommit, StoreCancelled, ViewLoader, store_run

__all__ = ["BeforeCommit", "StoreCancelled", "ViewLoader", "store_run"]
