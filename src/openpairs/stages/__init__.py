"""Stages: per-shard `run_shard(config, task) -> ShardStats` functions and global steps."""
