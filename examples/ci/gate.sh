#!/bin/sh
# A generic CI gate: fail the pipeline on high findings, and fail closed when some rule
# could not be evaluated (an endpoint down, an API call denied).
set -u
rempart scan -i inventory.yaml --fail-on high -o findings.json -o report.html --quiet
status=$?
case $status in
  0) echo "rempart: no finding at or above high" ;;
  1) echo "rempart: findings at or above high — see report.html" ;;
  2) echo "rempart: invalid inventory, policy or scope — nothing was scanned" ;;
  3) echo "rempart: some rules could not be evaluated — the gate fails closed" ;;
esac
exit $status
