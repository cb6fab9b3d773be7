# One entry point for people and CI: `make run` starts a server, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LLAMA_CPP_VERSION ?= 0.3.36
WHEEL_CACHE ?= $(HOME)/.cache/gpustack-wheels
# llama.cpp is built with CUDA where nvcc is installed and an NVIDIA GPU answers, else a fast, portable
# CPU build. The wheel is cached per version and build flags, so each build runs once per machine.
LLAMA_GPU := $(shell command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo cuda)
ifeq ($(LLAMA_GPU),cuda)
LLAMA_CMAKE_ARGS ?= -DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=native -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
else
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF
endif
LLAMA_BUILD_ID := $(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
LLAMA_WHEEL_DIR := $(WHEEL_CACHE)/$(LLAMA_CPP_VERSION)-$(LLAMA_BUILD_ID)
LLAMA_WHEEL := $(LLAMA_WHEEL_DIR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-py3-none-linux_x86_64.whl
LLAMA_STAMP := $(VENV)/.llama-build-$(LLAMA_BUILD_ID)
DATA_DIR ?= ./data
PORT ?= 8080
WORKER_PORT ?= 10150
INSTANCE_PORTS ?= 40000-40999

.PHONY: install install-test engine run test lint typecheck pytest e2e bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

# llama-cpp-python is built from source once per set of flags and cached as a wheel.
$(LLAMA_WHEEL): | $(BIN)/python
	mkdir -p $(LLAMA_WHEEL_DIR)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
		$(BIN)/pip wheel --no-deps -w $(LLAMA_WHEEL_DIR) "llama-cpp-python==$(LLAMA_CPP_VERSION)"

# Installs the wheel of these flags over whatever build the venv had (pip alone would keep it).
$(LLAMA_STAMP): $(LLAMA_WHEEL) | $(BIN)/python
	$(BIN)/pip install -q --force-reinstall --no-deps $(LLAMA_WHEEL)
	$(BIN)/pip install -q --find-links $(LLAMA_WHEEL_DIR) "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	rm -f $(VENV)/.llama-build-* && touch $@

engine: install $(LLAMA_STAMP)
	@echo "llama.cpp engine: $(if $(LLAMA_GPU),CUDA,CPU) build ($(LLAMA_CMAKE_ARGS))"

install-test: engine
	$(BIN)/pip install -q -e ".[test]"

run: engine
	$(BIN)/gpustack start --data-dir $(DATA_DIR) --port $(PORT) --worker-port $(WORKER_PORT) \
		--instance-port-range $(INSTANCE_PORTS)

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
	$(BIN)/python benchmarks/gguf_header.py
	$(BIN)/python benchmarks/outage_restarts.py
	$(BIN)/python benchmarks/login_abuse.py
	$(BIN)/python benchmarks/controller_scale.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
