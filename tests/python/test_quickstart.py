"""The README quickstart (examples/release): setup.sh makes the app's git repository and the
server's configuration, and quickstart.sh takes a commit through build, approval and deploy with
the real AWS CLI. Both run here as they are."""

import os
import shutil
import subprocess
from pathlib import Path

from conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, running_server

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "release"


def test_the_quickstart_releases_hello_app_from_commit_to_deployed_directory(tmp_path, request, aws_cli):
    demo = tmp_path / "lockgate-demo"
    setup = subprocess.run(["bash", str(EXAMPLE / "setup.sh"), str(demo)], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
    assert setup.returncode == 0, setup.stderr
    commit = subprocess.run(["git", "--git-dir", str(demo / "hello-app.git"), "rev-parse", "main"],
                            capture_output=True, text=True, check=True).stdout.strip()

    with running_server(tmp_path, request, config_path=demo / "lockgate.toml") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            PATH=f"{aws_cli.parent}{os.pathsep}{env.get('PATH', '')}",
            AWS_ACCESS_KEY_ID=ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY,
            AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true", LOCKGATE_ENDPOINT=server.endpoint,
        )
        run = subprocess.run(["bash", "-x", str(EXAMPLE / "quickstart.sh")], cwd=demo, env=env,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)
        assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n{server.log_tail(80)}"
        assert f"Deploy hello-app 1.0.0 (commit {commit})?" in run.stdout, run.stdout
        assert run.stdout.strip().endswith("Hello from release 1.0.0"), run.stdout
        assert (demo / "site" / "VERSION").read_text() == "1.0.0\n"
