# opsconsole — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv install run test test-fast lint screenshots bench bench-quick lab-down clean

# Create .venv if missing and (re)install the package with the lab binaries and test tools.
# Debian tools the tests use, installed when root: tmux (drives the console in a real
# terminal), prometheus (for `promtool check rules/config` on the shipped alert rules) and
# openssl (the foreign-deployment tier makes its private CA with it, as an operator would).
venv:
	@for pair in tmux:tmux promtool:prometheus openssl:openssl; do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; command -v $$cmd >/dev/null && continue; \
	  { [ "$$(id -u)" = 0 ] && { apt-get install -y -q --no-install-recommends $$pkg >/dev/null \
	    || { apt-get update -q >/dev/null \
	         && apt-get install -y -q --no-install-recommends $$pkg >/dev/null; }; }; } \
	  || echo "warning: $$cmd missing and could not be installed ($$pkg)"; \
	done
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(MAKE) --no-print-directory install EXTRAS=lab,test
	@# our own modules too (an editable install is not compiled): ~0.2 s off every process
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q src >/dev/null
	@touch $(STAMP)

# uv resolves and installs the same versions as pip in ~20 s (pip took ~2 min on a fresh
# clone here); its cache (~/.cache/uv) is outside the repo. --compile-bytecode as pip does:
# with PYTHONDONTWRITEBYTECODE set (as here) every process would recompile every import.
# pip when uv cannot be had.
EXTRAS ?= lab,test
install:
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv \
	  && UV_NATIVE_TLS=1 $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python \
	     -e '.[$(EXTRAS)]' \
	  || $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[$(EXTRAS)]'

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory venv

# Start the console on the embedded lab (brings the lab up if it is not running).
run: $(STAMP)
	$(BIN)/opsconsole --config config/lab.toml

# The whole suite: lint, the import contracts, then every tier (unit, tui, lab) against the
# real lab processes.
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q

# The unit tier only: no process is started (tests/unit/conftest.py refuses any), < 60 s.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit --hypothesis-profile=fast

# SVGs of the real console on the real lab (starts the lab if needed).
screenshots: $(STAMP)
	$(BIN)/python -m opsconsole.tui.shots --out screenshots

# Every benchmark of issue 10 in one session (≤ 20 min, loopback, on a bench lab of its own):
# opsconsole side by side with Locust / a bare loop / ground truth / the goals; rewrites the
# generated section of docs/PERFORMANCE.md. Run it on a quiet machine (nothing else busy).
bench: $(STAMP)
	$(MAKE) --no-print-directory install EXTRAS=lab,test,bench
	$(BIN)/python bench/run_all.py

# The same harness with tiny parameters (≈ 2-3 min): a smoke test, not a measurement;
# results and the generated document go to out/bench-quick/, docs/ is left alone.
bench-quick: $(STAMP)
	$(MAKE) --no-print-directory install EXTRAS=lab,test,bench
	$(BIN)/python bench/run_all.py --quick

# Ruff, then the import contracts of pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-logo

lab-down: $(STAMP)
	$(BIN)/opsconsole lab down

clean:
	-$(BIN)/opsconsole lab down
	rm -rf $(VENV) .opsconsole build src/*.egg-info .import_linter_cache
