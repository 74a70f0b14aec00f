# scorelab: two commands on a fresh machine with Python 3.11 and pip.
#   make demo   set up .venv and run the main job (train + sample + evaluate + figures)
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO_OUT ?= runs/demo
# One torch thread: on 2 shared cores, 2 threads per process made small networks many times slower.
export OMP_NUM_THREADS ?= 1
export MPLBACKEND := Agg

.PHONY: setup demo test bench bench-full lint clean notebooks

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, through the constraints file: the pinned CPU wheel, never a multi-GB CUDA build.
	$(PIP) install --quiet -c constraints.txt torch
	$(PIP) install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/scorelab demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: setup
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/run_all.py

bench-full: setup
	$(PIP) install --quiet -c constraints.txt -e ".[bench]"
	$(PY) benchmarks/run_all.py --full

# Run every tutorial notebook in full mode and write HTML copies, figures embedded, to read
# without running: notebooks/html/*.html (git-ignored). The tests run them in fast mode.
notebooks: setup
	$(PY) notebooks/run_notebooks.py --html notebooks/html

lint: setup
	$(PIP) install --quiet -c constraints.txt ruff
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
