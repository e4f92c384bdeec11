#!/bin/sh
# One-shot (docker-compose.yml, profile `distributed`): creates the distributed runner's topics
# with $EW_PARTITIONS partitions before any bridge, worker or alerter starts.
#
# Why not Kafka's automatic creation: a topic made by a first produce or fetch gets whatever
# the broker's default count is, and the workers must be told the count of ew.readings
# (`earlywarn worker --partitions`): a different one would put a site's readings on a
# partition no worker evaluates. So the topics are made here, and a count that differs from
# what the workers are told stops the stack instead of running half-blind.
set -eu
bin=/opt/kafka/bin
kafka="${EW_KAFKA:-kafka:9092}"
partitions="${EW_PARTITIONS:?set EW_PARTITIONS}"

tries=0
until "$bin/kafka-broker-api-versions.sh" --bootstrap-server "$kafka" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "Kafka at $kafka did not answer within 2 minutes" >&2
        exit 1
    fi
    sleep 2
done

for topic in ew.readings ew.alarms ew.deadletter; do
    "$bin/kafka-topics.sh" --bootstrap-server "$kafka" --create --if-not-exists \
        --topic "$topic" --partitions "$partitions" --replication-factor 1
done

have=$("$bin/kafka-topics.sh" --bootstrap-server "$kafka" --describe --topic ew.readings \
    | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ "$have" != "$partitions" ]; then
    echo "ew.readings has ${have:-no} partitions but the workers are told $partitions:" \
        "change x-partitions in docker-compose.yml to $have, or move the data to a new" \
        "topic (Kafka cannot shrink a topic, and growing it moves sites between" \
        "partitions)" >&2
    exit 1
fi
echo "topics ready: ew.readings, ew.alarms, ew.deadletter with $partitions partitions"
