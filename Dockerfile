# neuron-atlas: one image for the web server and the workers (docker-compose.yml runs both).
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends tuxpaint-stamps-default \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/neuron-atlas
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY dissect_core dissect_core
COPY templates templates
COPY static static
COPY migrations migrations
# The extras to install: the server stack by default; the Ray services of docker-compose.yml build with web,ray.
ARG EXTRAS=web
RUN pip install --no-cache-dir -e ".[${EXTRAS}]"

# The server and workers run as an unprivileged user: the code stays read-only to them, and everything they write
# (database, media, run artifacts, downloaded weights under HOME, numba's compiled kernels) goes to the volume.
# A bind-mounted data folder must be writable by uid 10001: `chown -R 10001:10001 ./data`.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home atlas \
    && mkdir -p /data && chown atlas:atlas /data
ENV NEURON_ATLAS_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/data/cache/numba \
    HOME=/data
USER atlas
VOLUME /data
EXPOSE 8000
CMD ["neuron-atlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
