#!/usr/bin/env bash
# The README walk-through: a pipeline with a manual approval, driven by the AWS CLI.
#
# tests/python/test_cli_walkthrough.py runs this very file against a fresh server, so every
# command quoted in the README is tested. It expects:
#   - a running `lockgate serve` at $LOCKGATE_ENDPOINT (default http://127.0.0.1:4680),
#   - a Lockgate user's keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and
#     AWS_DEFAULT_REGION=us-east-1 (e.g. from `lockgate user add Bob`),
#   - pipeline.json (beside this file) in the current directory.
set -euo pipefail
ENDPOINT="${LOCKGATE_ENDPOINT:-http://127.0.0.1:4680}"

# 1. A custom source action type. Lockgate fetches no code itself: a job worker (here, this
#    script) takes the source action's jobs and reports which revision it picked.
aws codepipeline create-custom-action-type --endpoint-url "$ENDPOINT" \
    --category Source --provider LocalSource --action-version 1 \
    --input-artifact-details minimumCount=0,maximumCount=0 \
    --output-artifact-details minimumCount=1,maximumCount=1

# 2. The pipeline: the source stage, then MyApprovalStage with the manual approval
#    MyApprovalAction. Creating a pipeline starts its first execution.
aws codepipeline create-pipeline --endpoint-url "$ENDPOINT" --cli-input-json file://pipeline.json

# 3. Be the source job worker: take the job, acknowledge it, report success with a revision.
JOB=$(aws codepipeline poll-for-jobs --endpoint-url "$ENDPOINT" \
    --action-type-id category=Source,owner=Custom,provider=LocalSource,version=1 \
    --max-batch-size 1 --query 'jobs[0].[id,nonce]' --output text)
read -r JOB_ID NONCE <<< "$JOB"
aws codepipeline acknowledge-job --endpoint-url "$ENDPOINT" --job-id "$JOB_ID" --nonce "$NONCE"
aws codepipeline put-job-success-result --endpoint-url "$ENDPOINT" --job-id "$JOB_ID" \
    --current-revision revision=v1.0.0,changeIdentifier=release-1

# 4. The execution now waits in MyApprovalStage. The pipeline state shows the approval's token.
aws codepipeline get-pipeline-state --endpoint-url "$ENDPOINT" --name MyFirstPipeline
TOKEN=$(aws codepipeline get-pipeline-state --endpoint-url "$ENDPOINT" --name MyFirstPipeline \
    --query "stageStates[?stageName=='MyApprovalStage'].actionStates[0].latestExecution.token" \
    --output text)

# 5. Approve: the answer names the pipeline, stage, action and token.
cat > approvalstage-approved.json <<JSON
{
  "pipelineName": "MyFirstPipeline",
  "stageName": "MyApprovalStage",
  "actionName": "MyApprovalAction",
  "token": "$TOKEN",
  "result": {
    "status": "Approved",
    "summary": "The new design looks good. Ready to release to customers."
  }
}
JSON
aws codepipeline put-approval-result --endpoint-url "$ENDPOINT" \
    --cli-input-json file://approvalstage-approved.json

# 6. The approval has succeeded; the state names who approved it and why.
aws codepipeline get-pipeline-state --endpoint-url "$ENDPOINT" --name MyFirstPipeline
