#!/bin/sh
# Writes Mosquitto's password file (salted hashes, never the passwords) from the environment
# that docker-compose.yml passes in from .env. Runs on every `docker compose up`.
set -eu
umask 077
file=/mosquitto/auth/passwd
: > "$file"
mosquitto_passwd -b "$file" earlywarn "$EW_MQTT_PASSWORD"
mosquitto_passwd -b "$file" simulator "$EW_SIMULATOR_PASSWORD"
# The broker runs as user mosquitto (uid 1883) and must read it.
chown 1883:1883 "$file"
echo "mosquitto password file written for: earlywarn simulator"
