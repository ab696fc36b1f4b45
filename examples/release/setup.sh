#!/usr/bin/env bash
# Makes the example's world in DIR (default ./lockgate-demo): the app's git repository
# (hello-app.git, one commit of app/), lockgate.toml naming it, and pipeline.json, whose deploy
# writes into DIR/site. Then: `lockgate serve --config DIR/lockgate.toml`, and quickstart.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${1:-lockgate-demo}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"

git init --quiet --bare --initial-branch=main "$DIR/hello-app.git"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
git clone --quiet "$DIR/hello-app.git" "$WORK/hello-app" 2>/dev/null
cp -R "$HERE/app/." "$WORK/hello-app/"
git -C "$WORK/hello-app" checkout --quiet -B main
git -C "$WORK/hello-app" add -A
git -C "$WORK/hello-app" -c user.name="Lockgate example" -c user.email=example@lockgate.invalid \
    commit --quiet -m "hello-app 1.0.0"
git -C "$WORK/hello-app" push --quiet origin main

cat > "$DIR/lockgate.toml" <<TOML
# The example's server configuration (examples/release/setup.sh wrote it).
data_dir = "$DIR/data"

# CodeCommit's RepositoryName "hello-app" is this git repository.
[[repositories]]
name = "hello-app"
url = "$DIR/hello-app.git"

# Look for new commits every 10 seconds.
[triggers]
poll_seconds = 10
TOML

sed "s|@DEPLOY_DIR@|$DIR/site|" "$HERE/pipeline.json" > "$DIR/pipeline.json"
echo "Made $DIR: hello-app.git, lockgate.toml, pipeline.json (deploys to $DIR/site)"
