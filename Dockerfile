FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md beat_schedule.py ./
COPY msgrelay msgrelay
COPY tasks tasks
COPY providers providers
COPY models models
COPY api api
RUN pip install --no-cache-dir . && useradd --create-home msgrelay \
    && mkdir -p /var/lib/msgrelay/metrics /var/lib/msgrelay/spool && chown -R msgrelay /var/lib/msgrelay
USER msgrelay
CMD ["msgrelay", "--help"]
