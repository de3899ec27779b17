# Set-up is part of every target: a fresh machine needs only python3 (3.10+) and make.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test docs fuzz dist

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	# Keras 2 (tf_keras), for the Keras-2-era tests, and tf2onnx, for the tests of its ONNX files;
	# --no-deps keeps tensorflow-cpu in place.
	$(PY) -m pip install -q --no-deps -c constraints.txt tf-keras tf2onnx
	# keras-hub, for its backbones (Functional subclasses): its tensorflow-text would replace tensorflow-cpu, so
	# --no-deps, beside the three packages its import needs.
	$(PY) -m pip install -q -c constraints.txt regex rich tokenizers
	$(PY) -m pip install -q --no-deps -c constraints.txt keras-hub
	# transformers, for its models built tiny from configs (tests/transformers_models.py): --no-deps, as what it
	# imports is here already (huggingface-hub, tokenizers, pyyaml, regex, safetensors, tqdm).
	$(PY) -m pip install -q --no-deps -c constraints.txt transformers
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p build/demo
	$(VENV)/bin/wconv keras-to-torch fixtures/seed_mlp.h5 build/demo/seed_mlp.pt --force --check

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist worksteal -q

docs: $(STAMP)
	$(VENV)/bin/wconv explain --markdown

# Deeper than the CI fuzz test: 4 x FUZZ_COUNT seeded mutants of small model files (SEED=... to vary).
FUZZ_COUNT ?= 2000
fuzz: $(STAMP)
	$(PY) tests/security/fuzz.py --count $(FUZZ_COUNT) $(if $(SEED),--seed $(SEED))

# The release's sdist and wheel, checked (docs/releasing.md).
dist: $(STAMP)
	$(PY) -m pip install -q build twine
	rm -rf dist
	$(PY) -m build --sdist --wheel --outdir dist .
	$(PY) -m twine check --strict dist/*
