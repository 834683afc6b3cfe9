#!/usr/bin/env bash
# The image's entrypoint (behind tini). The first argument chooses what the container runs:
#
#   api | worker | inbound   wait (bounded) for PostgreSQL and Redis, then exec `easeemail <role>`
#   migrate ...    wait (bounded) for PostgreSQL only, then exec `easeemail migrate ...`
#                  (also `migrate --wait --timeout 300`, the init containers' form)
#   healthcheck    with no role: probe whichever of api/worker/inbound this container runs (HEALTHCHECK)
#   anything else  an executable on PATH (bash, node, ...) runs as is; otherwise it is an
#                  easeemail subcommand (api-keys, wait, --help, ...) and passes through
#
# Migrations are not run here: `easeemail api` applies them itself when RUN_MIGRATIONS=true (one
# place for that rule, in containers and out), under the runner's advisory lock.
# `exec` everywhere, so Node is tini's direct child and receives SIGTERM itself.
#
# WAIT_TIMEOUT_SECONDS (default 60) bounds the wait for the data stores.
set -euo pipefail

log() { printf 'docker-entrypoint: %s\n' "$*" >&2; }

wait_for_stores() {
  local role=$1
  shift
  local timeout=${WAIT_TIMEOUT_SECONDS:-60}
  if [[ ! $timeout =~ ^[0-9]+$ ]]; then
    log "WAIT_TIMEOUT_SECONDS must be a whole number of seconds, got \"$timeout\""
    exit 2
  fi
  local status=0
  easeemail wait --timeout "$timeout" "$@" || status=$?
  if ((status != 0)); then
    log "not starting $role: its data stores did not answer within ${timeout}s (see above); check DATABASE_URL / REDIS_URL and that the servers are up, or raise WAIT_TIMEOUT_SECONDS"
    exit "$status"
  fi
}

# The role this container was started as, from the process table: tini's own arguments keep
# `docker-entrypoint.sh <role>` after the exec, and the Node process runs `easeemail <role>`.
detect_role() {
  local cmdline argv i
  for cmdline in /proc/[0-9]*/cmdline; do
    mapfile -d '' -t argv <"$cmdline" 2>/dev/null || continue
    for ((i = 0; i + 1 < ${#argv[@]}; i++)); do
      case ${argv[i]##*/} in
        docker-entrypoint.sh | easeemail | main.js)
          case ${argv[i + 1]} in
            api | worker | inbound)
              printf '%s\n' "${argv[i + 1]}"
              return 0
              ;;
          esac
          ;;
      esac
    done
  done
  return 1
}

role=${1:-}
case $role in
  api | worker | inbound)
    wait_for_stores "$role"
    exec easeemail "$@"
    ;;
  migrate)
    wait_for_stores "$role" --only postgres
    exec easeemail "$@"
    ;;
  healthcheck)
    if (($# == 1)); then
      if ! probed=$(detect_role); then
        log "no api, worker or inbound process in this container; nothing to probe"
        exit 0
      fi
      exec easeemail healthcheck "$probed"
    fi
    exec easeemail "$@"
    ;;
  '')
    exec easeemail --help
    ;;
  *)
    if type -P -- "$role" >/dev/null; then
      exec "$@"
    fi
    exec easeemail "$@"
    ;;
esac
