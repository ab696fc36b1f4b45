#!/bin/sh
# The application's tests, run by the pipeline's Build action.
set -e
out=$(sh hello.sh)
case "$out" in
  "Hello from release "*) echo "ok 1 - hello.sh greets with its version" ;;
  *) echo "not ok 1 - hello.sh said: $out"; exit 1 ;;
esac
