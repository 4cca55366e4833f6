# dq-monitor container image. Secrets (DQ_DATABASE_URL, ...) come from the environment at run time.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin dq

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY checks ./checks
COPY alerts ./alerts
COPY monitor ./monitor
RUN pip install . && rm -rf /app/build

USER 10001
ENTRYPOINT ["dq-monitor"]
CMD ["check"]
