"""Real clients (open_clip's trainer, clip_benchmark, TFDS, clip-retrieval, img2dataset) run on openpairs output.

Run with `make compat`; never part of `make test`. Each client lives in its own virtualenv, made from
`compat/requirements/<client>.txt` under `.compat/venvs/` (or `$OPENPAIRS_COMPAT_VENVS`).
"""
