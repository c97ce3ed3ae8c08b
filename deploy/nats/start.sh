#!/bin/sh
# where-nats: the image's entry point. Names the server after its machine, refuses a password the
# config file cannot carry, starts the Prometheus exporter for Fly's [metrics] when the image has
# it, then runs nats-server itself (exec: Fly's stop signal reaches the server, not this shell).
set -eu

# Stable across restarts and deploys of the machine, and starting with a letter: the config reads
# it as a bare word (a machine id alone, all hex, may read as a number).
if [ -z "${NATS_SERVER_NAME:-}" ]; then
  NATS_SERVER_NAME="${FLY_REGION:?FLY_REGION is not set}-${FLY_MACHINE_ID:?FLY_MACHINE_ID is not set}"
fi
export NATS_SERVER_NAME

# nats-server parses an environment value as a config value: "12345" is a number, "3e45" a float,
# "a#b" stops at the comment. Only letters and digits, starting with a letter, stay the string
# they are (docs/operations.md makes it as "wm" followed by hex).
case "${NATS_PASSWORD:-}" in
  '' | [!A-Za-z]* | *[!A-Za-z0-9]*)
    echo "where-nats: NATS_PASSWORD must be letters and digits and start with a letter (e.g. wm\$(openssl rand -hex 24))" >&2
    exit 2
    ;;
esac
case "${NATS_USER:-}" in
  '' | [!A-Za-z]* | *[!A-Za-z0-9_-]*)
    echo "where-nats: NATS_USER must be a word starting with a letter" >&2
    exit 2
    ;;
esac

# Fly scrapes Prometheus text from this port over 6PN (fly.toml [metrics]); nats-server's own
# monitoring port speaks JSON. Absent outside the image (the local tests run this script too).
if command -v prometheus-nats-exporter >/dev/null 2>&1; then
  prometheus-nats-exporter -addr "${NATS_EXPORTER_HOST:-fly-local-6pn}" -port "${NATS_EXPORTER_PORT:-7777}" \
    -varz -connz -routez -healthz -jsz=streams "http://127.0.0.1:${NATS_HTTP##*:}" &
fi

exec nats-server --config "${NATS_CONFIG:-/etc/nats/where-nats.conf}"
