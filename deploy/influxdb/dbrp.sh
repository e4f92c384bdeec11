#!/bin/bash
# Runs once in the influxdb:2.7 container, after the initial setup (org, bucket, token).
# Maps the InfluxQL database/retention policy "earlywarn/autogen" to the bucket, so the
# dashboards' InfluxQL queries (which also run on InfluxDB 1.8 and 3.x) work on InfluxDB 2.
set -euo pipefail
influx v1 dbrp create \
    --db earlywarn \
    --rp autogen \
    --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
    --default
echo "InfluxQL database earlywarn/autogen mapped to bucket ${DOCKER_INFLUXDB_INIT_BUCKET}"
