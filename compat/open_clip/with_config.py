"""Run a client's own entry point with our small CLIP config registered in open_clip first.

`python with_config.py CONFIG.json MODULE [ARGS...]` adds CONFIG.json to open_clip's model registry (as model
`<file stem>`) and then calls `MODULE.main` -- open_clip_train.main's `main(argv)`, or clip_benchmark.cli's
`main()` with ARGS as its command line -- unchanged.
"""

import importlib
import sys

import open_clip

if __name__ == "__main__":
    config, module, *args = sys.argv[1:]
    open_clip.add_model_config(config)
    sys.argv = [module, *args]
    entry = importlib.import_module(module).main
    sys.exit(entry(args) if module == "open_clip_train.main" else entry())
