# dq-monitor container image: `docker build -t dq-monitor .`
# No secret is baked in: DQ_DATABASE_URL, route URLs and the heartbeat URL come from the
# environment at run time (docker run -e / a Kubernetes Secret).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, non-root UID so that Kubernetes' runAsNonRoot can verify it without a name lookup.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin dq

WORKDIR /app
COPY pyproject.toml README.md ./
COPY config/ config/
COPY checks/ checks/
COPY alerts/ alerts/
COPY monitor/ monitor/
RUN pip install --no-cache-dir .

# /metrics, /healthz, /readyz and the status page (config.DEFAULT_METRICS_PORT).
EXPOSE 8477

USER 10001

# Healthy means the process and its scheduler live, not that the database is up; no curl in
# a slim image, so the interpreter makes the request. Follow DQ_METRICS_PORT if you change it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8477/healthz', timeout=3)"]

# Exec form: dq-monitor is PID 1 and receives docker stop's SIGTERM itself.
ENTRYPOINT ["dq-monitor"]
CMD ["run"]
