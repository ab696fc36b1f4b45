#!/bin/sh
# The whole "application": it greets, naming its version.
echo "Hello from release $(cat "$(dirname "$0")/VERSION")"
