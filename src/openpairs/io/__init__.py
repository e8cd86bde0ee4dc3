"""Filesystem access (fsspec), atomic shard commits and resume."""
