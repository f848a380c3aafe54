#!/bin/sh
# Start one sharded run (examples/k8s/sharded-scan.yaml) and wait for its merge.
# Usage: run-sharded-scan.sh [TIMEOUT]   e.g. run-sharded-scan.sh 6h
set -eu
here=$(dirname "$0")
RUN=$(date -u +%Y%m%d-%H%M%S)
export RUN
envsubst '${RUN}' < "$here/sharded-scan.yaml" | kubectl apply -f -
echo "run $RUN started; waiting for job/rempart-merge-$RUN"
kubectl wait --for=condition=complete "job/rempart-merge-$RUN" --timeout="${1:-12h}"
kubectl logs "job/rempart-merge-$RUN" -c merge
