# syntax=docker/dockerfile:1
# One multi-stage build for every Orra image. Pick the service with a build argument:
#   docker build --build-arg SERVICE=planner -t orra-planner .
# SERVICE is one of: planner, dispatcher, gateway, notifier, examples.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE=gateway
ARG UV_VERSION=0.13.9
ENV UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY examples ./examples
# The otel extra: the OpenTelemetry SDK and OTLP exporter, used only when OTEL_* asks for them.
RUN uv sync --frozen --no-dev --no-editable --package "orra-${SERVICE}" --extra otel

FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE=gateway
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ORRA_SERVICE=${SERVICE} \
    ORRA_LOG_FORMAT=json \
    ORRA_HEALTH_PORT=8080
RUN groupadd --system --gid 10001 orra \
    && useradd --system --uid 10001 --gid orra --no-create-home --shell /usr/sbin/nologin orra
COPY --from=build --chown=orra:orra /app/.venv /app/.venv
USER 10001:10001
EXPOSE 8005 8080
# The console script of every image is orra-<service>.
ENTRYPOINT ["/bin/sh", "-c", "exec orra-${ORRA_SERVICE} \"$@\"", "--"]
