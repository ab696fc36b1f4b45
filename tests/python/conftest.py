"""Fixtures that run the real `lockgate` binary and point boto3 at it.

The `lockgate` fixture starts `target/release/lockgate serve` (or `$LOCKGATE_BIN`) on a free
loopback port with a fresh data directory, after adding the user `Bob` with fixed keys through
`lockgate user add`. Tests get boto3 clients for both wire protocols: the stock model (botocore
picks awsJson1.1) and a copy of the model that lists only `smithy-rpc-v2-cbor`, so the same test
body runs once per protocol. Every request a client sends is checked to have gone to the path of
its protocol, so a CBOR test cannot silently fall back to JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.loaders
import botocore.serialize
import botocore.session
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
USER_NAME = "Bob"
ACCESS_KEY_ID = "AKIALOCKGATETESTBOB1"
SECRET_ACCESS_KEY = "lockgate/test/Bob/wJalrXUtnFEMI/K7MDENG/bPxRfiCY"
USER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/{USER_NAME}"

CBOR = "smithy-rpc-v2-cbor"
JSON_TARGET_PREFIX = "CodePipeline_20150709."
CBOR_PATH_PREFIX = "/service/CodePipeline_20150709/operation/"

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# Where Debian's libfaketime lives; the expiry tests preload it into the server.
LIBFAKETIME_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)


def pytest_configure(config):
    # The tests name every endpoint, key and region themselves: nothing from the developer's own
    # AWS setup may leak in (a profile, an endpoint override, a model override).
    for name in list(os.environ):
        if name.startswith("AWS_"):
            del os.environ[name]
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


def lockgate_binary() -> Path:
    path = Path(os.environ.get("LOCKGATE_BIN") or REPO_ROOT / "target" / "release" / "lockgate")
    if not path.is_file():
        pytest.fail(
            f"the lockgate binary is missing at {path}: run `cargo build --release -p lockgate` "
            "or set LOCKGATE_BIN",
            pytrace=False,
        )
    return path


def libfaketime_path() -> str:
    override = os.environ.get("LOCKGATE_LIBFAKETIME")
    for candidate in ((override,) if override else ()) + LIBFAKETIME_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "libfaketime is not installed (Debian: apt-get install faketime); scripts/test installs it",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LockgateServer:
    """One `lockgate serve` process over one data directory; restarts keep the port and data."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, config_path: Path | None = None):
        self.binary = binary
        # A lockgate.toml passed with --config to every command (the notification tests' topics).
        self.config_path = config_path
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.user_arn = USER_ARN
        self.process: subprocess.Popen | None = None
        self.starts = 0
        # Environment every start and command gets (on top of the test's own).
        self.base_env: dict[str, str] = {}

    # -- the command line ------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Runs `lockgate ARGS --data-dir DIR` (user management) and returns the result."""
        result = subprocess.run(
            [str(self.binary), *args, "--data-dir", str(self.data_dir), *self._config_args()],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"lockgate {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
        return result

    def add_user(self, name: str, access_key_id: str, secret_access_key: str) -> str:
        out = self.cli(
            "user", "add", name,
            "--access-key-id", access_key_id,
            "--secret-access-key", secret_access_key,
            "--password", "correct-horse-battery-staple",
        ).stdout
        return out

    # -- the process -----------------------------------------------------------------------

    def _config_args(self) -> list[str]:
        return ["--config", str(self.config_path)] if self.config_path else []

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "AWS_", "FAKETIME"))}
        env.pop("LD_PRELOAD", None)
        env["NO_COLOR"] = "1"
        env["LOCKGATE_LOG"] = "info,lockgate_api=debug"
        env.update(self.base_env)
        env.update(extra or {})
        return env

    def start(self, env: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        assert self.process is None, "the server is already running"
        self.starts += 1
        with open(self.log_path, "a") as log:
            log.write(f"\n===== start #{self.starts} (extra env: {sorted((env or {}).keys())}) =====\n")
        log = open(self.log_path, "a")
        try:
            self.process = subprocess.Popen(
                [
                    str(self.binary), "serve",
                    "--listen", f"127.0.0.1:{self.port}",
                    "--data-dir", str(self.data_dir),
                    "--account-id", ACCOUNT_ID,
                    "--region", REGION,
                    *self._config_args(),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(env),
            )
        finally:
            log.close()
        self.wait_healthy(timeout)

    def start_with_clock_offset(self, offset: str) -> None:
        """Starts the server with its clock moved by `offset` (libfaketime syntax, e.g. `+8d`)."""
        self.start(env={"LD_PRELOAD": libfaketime_path(), "FAKETIME": offset})

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: object = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"lockgate exited with {self.process.returncode} before it was ready:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as response:
                    body = response.read().decode()
                    if response.status == 200 and body.strip() == "ok":
                        return
                    last_error = f"{response.status} {body!r}"
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                last_error = e
            time.sleep(0.05)
        raise AssertionError(f"lockgate was not healthy within {timeout}s ({last_error}):\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then waits for a clean exit; returns the exit code."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise AssertionError(f"lockgate did not stop within {timeout}s of SIGTERM:\n{self.log_tail()}")
        return process.returncode

    def kill9(self) -> None:
        """Kills the server with SIGKILL: no chance to flush or close anything."""
        assert self.process is not None, "the server is not running"
        process, self.process = self.process, None
        process.send_signal(signal.SIGKILL)
        process.wait(15)

    def restart(self, env: dict[str, str] | None = None) -> None:
        code = self.stop()
        assert code == 0, f"lockgate exited with {code} on SIGTERM:\n{self.log_tail()}"
        self.start(env)

    # -- what it said ----------------------------------------------------------------------

    def log(self) -> str:
        """Everything the server wrote, with any terminal colour codes removed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return ANSI_ESCAPE.sub("", text)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@contextlib.contextmanager
def running_server(tmp_path: Path, request, config_path: Path | None = None):
    """A running Lockgate server with the user Bob over a fresh data directory, with the
    configuration file `config_path` when given; stopped (SIGTERM, clean exit) at the end. A test
    marked `no_local_worker` plays the job worker for AWS-owned actions itself, so the server's
    own worker is off (`[worker] local = false`)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = LockgateServer(lockgate_binary(), data_dir, tmp_path / "lockgate.log", config_path=config_path)
    server.add_user(USER_NAME, ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    if request.node.get_closest_marker("no_local_worker"):
        server.base_env["LOCKGATE_WORKER__LOCAL"] = "false"
    server.start()
    try:
        yield server
    finally:
        running = server.process is not None
        code = server.stop()
        # Shown by pytest only when the test failed.
        print(f"----- lockgate log ({server.log_path}) -----\n{server.log_tail(120)}")
        if running and code != 0:
            pytest.fail(f"lockgate exited with {code} on SIGTERM", pytrace=False)


@pytest.fixture
def lockgate(tmp_path, request):
    """A running Lockgate server with the user Bob (see `running_server`)."""
    with running_server(tmp_path, request) as server:
        yield server


# -- boto3 clients over both protocols ---------------------------------------------------------


@pytest.fixture(scope="session")
def cbor_data_path(tmp_path_factory) -> Path:
    """A botocore data directory whose codepipeline model offers only RPC v2 CBOR.

    botocore ranks `json` above `smithy-rpc-v2-cbor` whatever order the model lists them in, so
    the only way to make boto3 speak CBOR is to give it a model that offers nothing else.
    """
    if CBOR not in botocore.serialize.SERIALIZERS:
        pytest.fail(
            f"botocore {botocore.__version__} cannot speak {CBOR}; pin a newer botocore in "
            "tests/python/requirements.txt",
            pytrace=False,
        )
    loader = botocore.loaders.Loader()
    version = loader.determine_latest_version("codepipeline", "service-2")
    model = loader.load_service_model("codepipeline", "service-2", version)
    model["metadata"]["protocols"] = [CBOR]
    model["metadata"]["protocol"] = CBOR
    root = tmp_path_factory.mktemp("botocore-cbor-data")
    target = root / "codepipeline" / version
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(model))
    return root


_SESSIONS: dict[str, botocore.session.Session] = {}


def botocore_session(protocol: str, cbor_data_path: Path) -> botocore.session.Session:
    if protocol not in _SESSIONS:
        session = botocore.session.Session()
        if protocol == "cbor":
            session.get_component("data_loader").search_paths.insert(0, str(cbor_data_path))
        _SESSIONS[protocol] = session
    return _SESSIONS[protocol]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def wire_check(protocol: str):
    """A `before-send` hook failing any request that is not on its protocol's path."""

    def check(request, **_):
        path = urlsplit(request.url).path
        headers = {k.lower(): _text(v) for k, v in request.headers.items()}
        if protocol == "json":
            assert path == "/", f"an awsJson1.1 request went to {path}"
            assert headers.get("x-amz-target", "").startswith(JSON_TARGET_PREFIX), headers
            assert headers.get("content-type") == "application/x-amz-json-1.1", headers
        else:
            assert path.startswith(CBOR_PATH_PREFIX), f"an RPC v2 CBOR request went to {path}"
            assert headers.get("smithy-protocol") == "rpc-v2-cbor", headers
            assert "x-amz-target" not in headers, headers
        return None

    return check


def make_boto3_client(
    endpoint: str,
    protocol: str,
    cbor_data_path: Path,
    access_key_id: str = ACCESS_KEY_ID,
    secret_access_key: str = SECRET_ACCESS_KEY,
    validate: bool = True,
    region: str = REGION,
    **config,
):
    """A codepipeline client for `endpoint`; `validate=False` lets invalid input reach the server."""
    session = boto3.session.Session(botocore_session=botocore_session(protocol, cbor_data_path))
    cfg = botocore.config.Config(
        retries={"total_max_attempts": 1},
        parameter_validation=validate,
        connect_timeout=5,
        read_timeout=60,
        **config,
    )
    client = session.client(
        "codepipeline",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=cfg,
    )
    expected = CBOR if protocol == "cbor" else "json"
    assert client.meta.service_model.resolved_protocol == expected, client.meta.service_model.resolved_protocol
    client.meta.events.register("before-send.codepipeline", wire_check(protocol))
    return client


@pytest.fixture(params=["json", "cbor"])
def protocol(request) -> str:
    """`json` (awsJson1.1 on POST /) or `cbor` (RPC v2 CBOR on /service/...)."""
    return request.param


@pytest.fixture
def make_client(lockgate, protocol, cbor_data_path):
    """Builds more clients for this test's server and protocol (other keys, no validation...)."""

    def factory(**kwargs):
        kwargs.setdefault("protocol", protocol)
        return make_boto3_client(lockgate.endpoint, cbor_data_path=cbor_data_path, **kwargs)

    return factory


@pytest.fixture
def client(make_client):
    """Bob's client for this test's server, in this test's protocol."""
    return make_client()


@pytest.fixture
def raw_client(make_client):
    """Bob's client with botocore's own parameter checks off, so the server sees bad input."""
    return make_client(validate=False)


@pytest.fixture(scope="session")
def aws_cli() -> Path:
    """The AWS CLI (v1) installed beside the Python running the tests."""
    import sys

    candidate = Path(sys.executable).parent / "aws"
    found = str(candidate) if candidate.exists() else shutil.which("aws")
    if not found:
        pytest.fail("the AWS CLI is not installed: pip install -r tests/python/requirements.txt", pytrace=False)
    return Path(found)


@pytest.fixture
def make_boto3_client_for():
    """Makes a boto3 CodePipeline client (awsJson1.1) for a server a test started itself."""

    def make(server):
        return boto3.client(
            "codepipeline", endpoint_url=server.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    return make


@pytest.fixture
def moto():
    """`moto_server` on a free loopback port: SNS, SQS and S3 APIs with throwaway credentials
    (`testing` / `testing`)."""
    import sys

    from helpers import wait_until

    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def ready():
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(ready, "moto_server to answer", timeout=30)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)
