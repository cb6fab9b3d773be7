# One image for the server and for workers: `docker run IMAGE start ...` takes the same flags as `gpustack start`.
# Where a registry is reachable: `docker build -t gpustack .` (base python:3.11-slim-bookworm).
# Offline (CI): .ci/docker-image imports a Debian rootfs as the base and passes BASE_IMAGE.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# The CPU llama.cpp engine needs OpenMP; a base without it gets it from its package mirror.
RUN if ! ldconfig -p | grep -q libgomp.so.1; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi

ENV VIRTUAL_ENV=/opt/gpustack \
    PATH=/opt/gpustack/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GPUSTACK_DATA_DIR=/var/lib/gpustack
# docker-wheels/ may hold prebuilt wheels (e.g. llama-cpp-python from ~/.cache/gpustack-wheels, which
# `make engine` builds): pip takes them instead of building from source. ENGINE="" leaves the CPU engine out.
ARG ENGINE="llama-cpp-python[server]==0.3.36"
# PIP_NO_INDEX=1: install only from docker-wheels/ (offline builds)
ARG PIP_NO_INDEX=
COPY pyproject.toml /src/
COPY docker-wheels/ /tmp/wheels/
# dependencies first: this layer stays cached until pyproject.toml changes
RUN python3 -m venv /opt/gpustack \
 && python3 -c "import tomllib; print('\\n'.join(tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install --no-cache-dir --find-links /tmp/wheels -r /tmp/requirements.txt ${ENGINE} \
 && rm /tmp/requirements.txt
COPY README.md /src/
COPY gpustack /src/gpustack
RUN pip install --no-cache-dir --find-links /tmp/wheels --no-deps /src && rm -rf /src /tmp/wheels && gpustack --version

VOLUME /var/lib/gpustack
EXPOSE 8080 10150
# Health: the server answers GET /healthz (and /readyz once migrated) on its port.
ENTRYPOINT ["gpustack"]
CMD ["start"]
