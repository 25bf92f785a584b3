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
RUN pip install --no-cache-dir -e .

ENV NEURON_ATLAS_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["neuron-atlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
