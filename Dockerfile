# The earlywarn service image for docker-compose.yml.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY earlywarn ./earlywarn
COPY examples ./examples
COPY ingest ./ingest
COPY rules ./rules
COPY alerting ./alerting
COPY storage ./storage
COPY dashboards ./dashboards
COPY simulators ./simulators
RUN pip install . && useradd --system --uid 10001 --home /data earlywarn \
    && mkdir -p /data && chown earlywarn /data
USER earlywarn
WORKDIR /data
ENTRYPOINT ["earlywarn"]
CMD ["demo"]
