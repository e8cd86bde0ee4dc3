# openpairs: `make demo` runs the pipeline end to end on bundled data; `make test` runs ruff, mypy, pytest.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck docs pytest demo system-deps clean fuzz compat

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# clip-retrieval's client and front page, for the compatibility tests: its own pins (old pyarrow,
	# torch ranges) would fight ours, and ClipClient needs only requests, so it comes without dependencies.
	$(PY) -m pip install -q --no-deps clip-retrieval==2.45.0
	touch $(STAMP)

install: $(STAMP)

system-deps:
	bash scripts/ensure_system_deps.sh

lint: install
	$(VENV)/bin/ruff check src tests benchmarks compat
	$(VENV)/bin/ruff format --check src tests benchmarks compat

typecheck: install
	$(VENV)/bin/mypy

pytest: install system-deps
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=30

# The docs site, built strictly (a broken link, anchor or nav entry fails it) into the git-ignored site/.
# Not -q: mkdocs 1.6 stops counting warnings at that log level, and --strict would then pass them.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

test: lint typecheck docs pytest

demo: install
	$(VENV)/bin/openpairs demo

# Coverage-guided fuzzing with atheris (never part of `make test`): FUZZ_SECONDS per target (default 60);
# crashing inputs land in fuzz/crashes/<target>/ and fail the run. See docs/fuzzing.md.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= wat images inputs
fuzz: install
	$(PY) -m pip install -q -e '.[fuzz]'
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Real clients on openpairs output (never part of `make test`): each client in its own venv under
# .compat/venvs, made from compat/requirements/<client>.txt on first use. See docs/clients.md.
COMPAT_ARGS ?=
compat: install
	$(VENV)/bin/pytest -q -p no:cacheprovider --timeout 3600 --durations=0 compat $(COMPAT_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
