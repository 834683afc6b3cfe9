#!/usr/bin/env bash
# The container suite (issue 6): builds the image, runs the compose stack, the entrypoint tests
# and the `podman kube play` smoke run against a Docker-compatible engine.
#
#   test/container/run.sh [jest args...]      e.g. test/container/run.sh image.spec
#
# Uses DOCKER_HOST when it is set; otherwise starts ../shared/container-lab (idempotent) and uses it.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ -z ${DOCKER_HOST:-} ]]; then
  lab=${CONTAINER_LAB:-../shared/container-lab}
  if [[ ! -x $lab/up ]]; then
    echo "run.sh: DOCKER_HOST is not set and no container lab at $lab (set CONTAINER_LAB or DOCKER_HOST)" >&2
    exit 2
  fi
  eval "$("$lab/up" | tail -1)"
  export DOCKER_HOST
fi
for tool in docker docker-compose podman; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 2; }
done

started=$(date +%s)
status=0
npx jest -c test/container/jest.config.js --runInBand "$@" || status=$?
echo "[container-suite] finished in $(($(date +%s) - started)) s, exit $status"
exit "$status"
