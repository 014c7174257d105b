# Everything runs from the project's own files: uv (pinned) is bootstrapped into .tools/, the
# project's environment is built from uv.lock into .venv/ with bytecode compiled at install.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home

.PHONY: install demo test lint dev backfill scorecard clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

.venv/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: .venv/.installed

demo: install  ## run the shipped example end to end and print its scorecard
	.venv/bin/okr demo

test: install  ## the whole test suite (what CI runs)
	.venv/bin/pytest

lint: install
	.venv/bin/ruff check .

dev: install  ## the Dagster UI on http://127.0.0.1:3000
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || cp dagster.yaml $(DAGSTER_HOME)/
	.venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

backfill: install  ## make backfill FROM=2025-Q1 TO=2025-Q4
	.venv/bin/okr backfill $(FROM) $(TO)

scorecard: install
	.venv/bin/okr scorecard $(QUARTERS)

clean:
	rm -rf var .venv .tools
