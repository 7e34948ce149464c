# syntax=docker/dockerfile:1
# leadledger image: the API, the processor and the topic job (see docker-compose.yml).
# Multi-stage: build wheels and the virtualenv with pip, then copy only the virtualenv into
# a clean runtime image that runs as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/leadledger
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY events ./events
COPY projections ./projections
COPY services ./services
RUN /opt/leadledger/bin/pip install --no-compile .

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 leadledger \
    && useradd --system --uid 10001 --gid leadledger --home-dir /var/lib/leadledger \
       --create-home --shell /usr/sbin/nologin leadledger
COPY --from=build /opt/leadledger /opt/leadledger
ENV PATH=/opt/leadledger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LEADLEDGER_EMBEDDED=false \
    LEADLEDGER_DATA_DIR=/var/lib/leadledger
USER leadledger:leadledger
WORKDIR /var/lib/leadledger
EXPOSE 8000 6066
# Health checks are per service in docker-compose.yml: the API and the processor differ.
ENTRYPOINT ["leadledger"]
CMD ["api"]
