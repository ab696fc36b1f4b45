// CDK v2 app (plain JavaScript) defining a simple release pipeline.
// Its synthesised template is used by Lockgate as a test fixture.
const cdk = require("aws-cdk-lib");
const codecommit = require("aws-cdk-lib/aws-codecommit");
const codebuild = require("aws-cdk-lib/aws-codebuild");
const codepipeline = require("aws-cdk-lib/aws-codepipeline");
const actions = require("aws-cdk-lib/aws-codepipeline-actions");
const s3 = require("aws-cdk-lib/aws-s3");

class ReleaseStack extends cdk.Stack {
  constructor(scope, id, props) {
    super(scope, id, props);

    const repo = new codecommit.Repository(this, "Repo", {
      repositoryName: "my-app",
    });

    const project = new codebuild.PipelineProject(this, "BuildProject", {
      projectName: "my-app-build",
      buildSpec: codebuild.BuildSpec.fromObject({
        version: "0.2",
        env: {
          "exported-variables": ["VERSION"],
        },
        phases: {
          build: {
            commands: ["echo building", "echo VERSION=1.0.$CODEBUILD_BUILD_NUMBER"],
          },
        },
      }),
    });

    const siteBucket = new s3.Bucket(this, "SiteBucket", {
      bucketName: "my-app-site",
    });

    const sourceOutput = new codepipeline.Artifact("SourceOutput");
    const buildOutput = new codepipeline.Artifact("BuildOutput");

    new codepipeline.Pipeline(this, "Pipeline", {
      pipelineName: "release",
      pipelineType: codepipeline.PipelineType.V2,
      stages: [
        {
          stageName: "Source",
          actions: [
            new actions.CodeCommitSourceAction({
              actionName: "Source",
              repository: repo,
              branch: "main",
              output: sourceOutput,
              variablesNamespace: "SourceVariables",
            }),
          ],
        },
        {
          stageName: "Build",
          actions: [
            new actions.CodeBuildAction({
              actionName: "Build",
              project,
              input: sourceOutput,
              outputs: [buildOutput],
              variablesNamespace: "Build",
            }),
          ],
        },
        {
          stageName: "Approve",
          actions: [
            new actions.ManualApprovalAction({
              actionName: "Approve",
              notifyEmails: ["release-managers@example.com"],
              additionalInformation:
                "Review commit #{SourceVariables.CommitId}, version #{Build.VERSION}",
              externalEntityLink:
                "https://git.example.com/my-app/commit/#{SourceVariables.CommitId}",
            }),
          ],
        },
        {
          stageName: "Deploy",
          actions: [
            new actions.S3DeployAction({
              actionName: "Deploy",
              bucket: siteBucket,
              input: buildOutput,
              extract: true,
            }),
          ],
        },
      ],
    });
  }
}

const app = new cdk.App();
new ReleaseStack(app, "ReleaseStack", {
  env: { account: "123456789012", region: "us-east-1" },
});
app.synth();
