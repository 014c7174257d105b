# Everything runs from the project's own files: uv (pinned) is bootstrapped into .tools/, the
# project's environment is built from uv.lock into .venv/ with bytecode compiled at install.
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
export DAGSTER_HOME ?= $(CURDIR)/var/dagster_home
PORT ?= 3000

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

dev: install  ## the Dagster UI on http://127.0.0.1:3000 (PORT=3001 for another port), webserver and daemon in one
	mkdir -p $(DAGSTER_HOME)
	.venv/bin/python -m pipelines.instance >/dev/null
	VIRTUAL_ENV=$(CURDIR)/.venv PATH=$(CURDIR)/.venv/bin:$$PATH .venv/bin/dg dev --host 127.0.0.1 --port $(PORT)

backfill: install  ## make backfill FROM=2025-Q1 TO=2025-Q4 (either may be left out: first / running quarter)
	.venv/bin/okr backfill $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

scorecard: install
	.venv/bin/okr scorecard $(QUARTERS)

clean:
	rm -rf var .venv .tools
