# One entry point for people and CI: `make run` starts a server, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LLAMA_CPP_VERSION ?= 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/gpustack-wheels
LLAMA_WHEEL := $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-py3-none-linux_x86_64.whl
# Fast, portable CPU build of llama.cpp (the wheel is cached, so this runs once per machine).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
DATA_DIR ?= ./data
PORT ?= 8080

.PHONY: install install-test engine run test lint typecheck pytest e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

# llama-cpp-python is built from source once and cached as a wheel.
$(LLAMA_WHEEL): | $(BIN)/python
	mkdir -p $(WHEEL_CACHE)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/pip wheel --no-deps -w $(WHEEL_CACHE) "llama-cpp-python==$(LLAMA_CPP_VERSION)"

engine: install $(LLAMA_WHEEL)
	$(BIN)/pip install -q --find-links $(WHEEL_CACHE) "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"

install-test: engine
	$(BIN)/pip install -q -e ".[test]"

run: engine
	$(BIN)/gpustack start --data-dir $(DATA_DIR) --port $(PORT)

lint: install-test
	$(BIN)/ruff check gpustack tests benchmarks
	$(BIN)/ruff format --check gpustack tests benchmarks

typecheck: install-test
	$(BIN)/mypy gpustack

pytest: install-test
	$(BIN)/pytest -q -ra

test: lint typecheck pytest

bench: engine
	$(BIN)/python benchmarks/proxy_overhead.py
	$(BIN)/python benchmarks/scheduler_scale.py
	$(BIN)/python benchmarks/login_abuse.py
	$(BIN)/python benchmarks/controller_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
