# Two commands on a fresh machine with Python 3.11 and pip: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test test-tensorflow test-jax install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m training.demo

test: test-tensorflow test-jax

test-tensorflow: $(STAMP)
	$(BIN)/python -m pytest -q

# The layers again on the JAX backend: forward, backward, saving.
test-jax: $(STAMP)
	KERAS_BACKEND=jax $(BIN)/python -m pytest -q tests/test_layers.py tests/test_factory.py tests/test_docstrings.py

clean:
	rm -rf $(VENV) build *.egg-info
