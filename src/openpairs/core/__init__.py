"""Core data contract: statuses, shard statistics, schemas and keys."""
