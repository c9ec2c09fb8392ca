# voxstack images: one target per service (core, asr, llm, tts) and a dev
# variant of each (core-dev, asr-dev, llm-dev, tts-dev).
#
#   docker build --target asr -t voxstack-asr .
#   docker build --target asr --build-arg BASE_IMAGE=voxstack-base:bookworm-py3.11 .
#
# Build stages hold pip, the wheelhouse and (only when llama-cpp-python has to
# be compiled) the compilers; runtime stages copy out the virtualenv, the
# model and the source. Written for the classic builder as well as BuildKit
# (no RUN --mount), since some engines have no BuildKit.

ARG BASE_IMAGE=python:3.11-slim

# ---- shared by every stage ---------------------------------------------------
FROM ${BASE_IMAGE} AS base
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app/src \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    VOXSTACK_MODELS_DIR=/opt/voxstack/models \
    VOXSTACK_STATE_DIR=/tmp/voxstack
# The runtime stages use the numeric USER 10001: a runtime can tell it is not
# root without reading /etc/passwd (Kubernetes' runAsNonRoot needs that).
RUN groupadd --system --gid 10001 voxstack \
    && useradd --system --uid 10001 --gid voxstack --no-create-home --home-dir /tmp --shell /usr/sbin/nologin voxstack

# ---- build stages --------------------------------------------------------------
FROM base AS builder
RUN python3 -m venv /opt/venv
# Holds only a README unless `make wheelhouse` filled it.
COPY wheelhouse/ /wheelhouse/
COPY docker/install-deps.sh docker/llama-cpp-build.sh docker/pull-models.sh /usr/local/bin/
COPY pyproject.toml README.md /build/
COPY docker/av-stub/ /build/av-stub/

FROM base AS app
COPY pyproject.toml /app/
COPY src/voxstack/ /app/src/voxstack/
# The root filesystem is read-only at run time: compile now, not at each start.
RUN python3 -m compileall -q /app/src

# The dev variants' extra tools, kept apart so the runtime environments stay unchanged.
FROM builder AS devtools
RUN if ls /wheelhouse/*.whl >/dev/null 2>&1; then export PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheelhouse; fi \
    && pip install --target /opt/devtools "watchfiles>=1.0" "debugpy>=1.8"

FROM builder AS deps-core
RUN install-deps.sh core

# Only voxstack's models module and the errors it raises: standard library
# only (an import contract keeps it so), so this stage installs nothing and
# is rebuilt only when the pinned models change.
FROM builder AS models
# The llm preset whose model the llm image carries (tiny, small or quality).
ARG LLM_PRESET=quality
COPY src/voxstack/__init__.py src/voxstack/codes.py src/voxstack/errors.py /build/src/voxstack/
COPY src/voxstack/models/ /build/src/voxstack/models/
RUN LLM_PRESET="$LLM_PRESET" pull-models.sh asr llm tts

FROM builder AS deps-asr
RUN install-deps.sh asr

FROM builder AS deps-llm
RUN install-deps.sh llm

FROM builder AS deps-tts
RUN install-deps.sh tts

# ---- runtime images -------------------------------------------------------------
FROM base AS core
COPY --from=deps-core /opt/venv /opt/venv
COPY --from=app /app /app
ENV VOXSTACK_CORE__HOST=0.0.0.0
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["voxstack"]
CMD ["serve", "core"]

FROM base AS asr
COPY --from=models /opt/models/asr/ /opt/voxstack/models/
COPY --from=deps-asr /opt/venv /opt/venv
COPY --from=app /app /app
ENV VOXSTACK_ASR__HOST=0.0.0.0
USER 10001:10001
EXPOSE 50051
ENTRYPOINT ["voxstack"]
CMD ["serve", "asr"]

FROM base AS llm
# llama.cpp's OpenMP runtime; the local Debian base image already has it.
RUN ldconfig -p | grep -q libgomp.so.1 || { apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; }
COPY --from=models /opt/models/llm/ /opt/voxstack/models/
COPY --from=deps-llm /opt/venv /opt/venv
COPY --from=app /app /app
ARG LLM_PRESET=quality
ENV VOXSTACK_LLM__HOST=0.0.0.0 VOXSTACK_LLM__PRESET=$LLM_PRESET
USER 10001:10001
EXPOSE 50052
ENTRYPOINT ["voxstack"]
CMD ["serve", "llm"]

FROM base AS tts
COPY --from=models /opt/models/tts/ /opt/voxstack/models/
COPY --from=deps-tts /opt/venv /opt/venv
COPY --from=app /app /app
ENV VOXSTACK_TTS__HOST=0.0.0.0
USER 10001:10001
EXPOSE 50053
ENTRYPOINT ["voxstack"]
CMD ["serve", "tts"]

# ---- dev variants: the same image plus the watcher and debugger -----------------
# docker-compose.dev.yml mounts the source over /app/src/voxstack and runs
# `voxstack dev --only SERVICE`.
FROM core AS core-dev
COPY --from=devtools /opt/devtools /opt/devtools
ENV PYTHONPATH=/app/src:/opt/devtools VOXSTACK_MODE=dev
CMD ["dev", "--only", "core"]

FROM asr AS asr-dev
COPY --from=devtools /opt/devtools /opt/devtools
ENV PYTHONPATH=/app/src:/opt/devtools VOXSTACK_MODE=dev
CMD ["dev", "--only", "asr"]

FROM llm AS llm-dev
COPY --from=devtools /opt/devtools /opt/devtools
ENV PYTHONPATH=/app/src:/opt/devtools VOXSTACK_MODE=dev
CMD ["dev", "--only", "llm"]

FROM tts AS tts-dev
COPY --from=devtools /opt/devtools /opt/devtools
ENV PYTHONPATH=/app/src:/opt/devtools VOXSTACK_MODE=dev
CMD ["dev", "--only", "tts"]
