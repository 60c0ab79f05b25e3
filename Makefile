# Docent — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PROJECT := backend-py
# uv from PATH, or a private copy installed into .tools/ on first use (needs only python3).
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/uv/bin/uv)
ENV_FILE := env/backend/local.env
RUN := $(UV) run --project $(PROJECT) --no-sync $(if $(wildcard $(ENV_FILE)),--env-file $(ENV_FILE))
UVX := cd $(PROJECT) && $(UV) run --no-sync
PYTEST := $(UVX) pytest -c pyproject.toml

.PHONY: help run test lint fmt typecheck unit sync token migrate bench eval clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(CURDIR)/.tools/uv/bin/uv:
	python3 -m pip install --quiet --disable-pip-version-check --target $(CURDIR)/.tools/uv uv

# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on these
# machines), Python would otherwise recompile every module from source at every start.
sync: $(UV)  ## install the locked dependencies into backend-py/.venv
	$(UV) sync --project $(PROJECT) --frozen --compile-bytecode --quiet

run: sync  ## serve on 127.0.0.1:$${PORT:-8000} (embedded PostgreSQL under .data/ unless DATABASE_URL is set)
	$(RUN) docent serve

token: sync  ## print a development token: make token EMAIL=you@example.com
	@$(RUN) docent token --email $(EMAIL)

migrate: sync  ## apply pending migrations
	$(RUN) docent migrate

test: lint typecheck unit  ## lint, type check and the whole suite (what CI runs)

lint: sync  ## ruff lint and format check
	$(UVX) ruff check src ../tests
	$(UVX) ruff format --check src ../tests

fmt: sync  ## fix lint and formatting
	$(UVX) ruff check --fix src ../tests
	$(UVX) ruff format src ../tests

typecheck: sync  ## mypy --strict on the package and the tests
	$(UVX) mypy src ../tests

unit: sync  ## the test suite with coverage
	$(PYTEST) --cov --cov-report=term

clean:  ## remove the virtualenv and tool caches (keeps .data/)
	rm -rf $(PROJECT)/.venv .tools .pytest_cache .mypy_cache .ruff_cache $(PROJECT)/.coverage

bench: sync  ## benchmarks: token verification, make-run start-up, ingestion, search at 100k chunks, agent turns
	$(UVX) python bench/bench_auth.py
	$(UVX) python bench/bench_startup.py
	$(UVX) python bench/bench_retrieval.py
	$(UVX) python bench/bench_agent.py

EVAL_DIR := .data/eval
EVAL_ARCHIVE := ../shared/eval/postgresql-15-docs-html.tar.xz
$(EVAL_DIR)/corpus:
	mkdir -p $(EVAL_DIR) && tar -xJf $(EVAL_ARCHIVE) -C $(EVAL_DIR)

eval: sync $(EVAL_DIR)/corpus  ## retrieval quality on the PostgreSQL manual (EVAL_SAMPLE=N: gold pages + N others)
	$(RUN) docent eval --questions ../shared/eval/questions.jsonl --corpus $(EVAL_DIR)/corpus \
		$(if $(EVAL_SAMPLE),--sample $(EVAL_SAMPLE))
