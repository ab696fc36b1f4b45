#!/usr/bin/env bash
# The README quickstart: a release of hello-app from commit to deployed directory, driven by
# the AWS CLI. tests/python/test_quickstart.py runs this very file. It expects a running
# `lockgate serve --config DIR/lockgate.toml` (see setup.sh) at $LOCKGATE_ENDPOINT (default
# http://127.0.0.1:4680), a Lockgate user's keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
# AWS_DEFAULT_REGION=us-east-1, and DIR as the current directory.
set -euo pipefail
ENDPOINT="${LOCKGATE_ENDPOINT:-http://127.0.0.1:4680}"
state() {
    aws codepipeline get-pipeline-state --endpoint-url "$ENDPOINT" --name release --query "$1" --output text
}
# wait_for STAGE: until the stage's latest action is in progress (an approval waiting) or done.
wait_for() {
    for _ in $(seq 120); do
        case "$(state "stageStates[?stageName=='$1'].actionStates[0].latestExecution.status")" in
            "$2") return 0 ;;
            Failed) echo "$1 failed:"; state "stageStates[?stageName=='$1'].actionStates[0].latestExecution.errorDetails.message"; return 1 ;;
        esac
        sleep 1
    done
    echo "$1 did not reach $2 within two minutes"; return 1
}

# 1. Create the pipeline. Creating it starts a release of the branch head: Lockgate fetches the
#    commit, runs the build's commands (which test the app and export VERSION), then waits.
aws codepipeline create-pipeline --endpoint-url "$ENDPOINT" --cli-input-json file://pipeline.json

# 2. Wait for the approval; its CustomData names the version the build exported.
wait_for Approve InProgress
aws codepipeline list-action-executions --endpoint-url "$ENDPOINT" --pipeline-name release \
    --query "actionExecutionDetails[?actionName=='Approve'].input.resolvedConfiguration.CustomData" \
    --output text
TOKEN=$(state "stageStates[?stageName=='Approve'].actionStates[0].latestExecution.token")

# 3. Approve it.
aws codepipeline put-approval-result --endpoint-url "$ENDPOINT" --pipeline-name release \
    --stage-name Approve --action-name Approve --token "$TOKEN" \
    --result summary="Looks good",status=Approved

# 4. Wait for the deploy, then look at what it deployed.
wait_for Deploy Succeeded
sh site/hello.sh
