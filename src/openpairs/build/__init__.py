"""`openpairs build`: every stage in order, resumable, with one configuration recorded in DIR/config.json."""

from openpairs.build.config import BuildConfig, build_config
from openpairs.build.run import BuildResult, run_build

__all__ = ["BuildConfig", "BuildResult", "build_config", "run_build"]
