# syntax=docker/dockerfile:1
#
# union-gateway's image: the one k8s/base/gateway/deployment.yaml and the
# migration Job run.
#
#   docker build -t union-gateway:0.1.0 .
#
# Not built in CI: the CI machine has no container engine. tests/test_k8s_manifests.py
# checks this file's structure (stages, non-root numeric USER, pinned bases,
# EXPOSE, CMD) by parsing it; build it where an engine exists before release.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- builder
# Builds wheels for the project and every dependency; compilers stay here.
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, from pyproject alone, so a code change reuses this layer.
COPY pyproject.toml README.md ./
RUN python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r /tmp/requirements.txt
COPY gateway.py ./
COPY schema/ schema/
COPY resolvers/ resolvers/
COPY sources/ sources/
COPY commands/ commands/
COPY domain/ domain/
COPY web/ web/
COPY simulator/ simulator/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# A fixed numeric UID/GID so Kubernetes' runAsNonRoot can verify it (a name
# cannot be checked) and matches runAsUser: 10001 in the manifests.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin gateway
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels union-gateway
# The migration runner reads SQL from migrations/ beside the installed
# `sources` package (sources/migrations.py: MIGRATIONS_DIR), which a wheel
# does not carry; put it exactly there.
COPY migrations/ /opt/union-gateway/migrations/
RUN target="$(python -c 'import sources.migrations as m; print(m.MIGRATIONS_DIR)')" \
 && mv /opt/union-gateway/migrations "$target" \
 && python -c 'import sources.migrations as m; assert any(m.MIGRATIONS_DIR.glob("*/*.sql"))'
# Nothing is written at run time except under /tmp (an emptyDir in Kubernetes,
# where the root filesystem is read-only).
WORKDIR /tmp
USER 10001:10001
EXPOSE 8000
# Kubernetes probes /healthz and /readyz; this is for plain `docker run`.
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
CMD ["union-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
