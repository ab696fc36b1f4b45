"""`lockgate user add|list|remove`: the keys it prints are the keys the API accepts."""

import re

from conftest import make_boto3_client
from helpers import expect_error


def test_user_add_generates_keys_that_sign_requests_and_shows_the_secret_only_once(lockgate, cbor_data_path):
    out = lockgate.cli("user", "add", "Carol").stdout
    assert "arn:aws:iam::123456789012:user/Carol" in out
    access_key_id = re.search(r"access key id:\s+(\S+)", out).group(1)
    secret = re.search(r"secret access key:\s+(\S+)", out).group(1)
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", access_key_id), access_key_id
    assert len(secret) >= 40, secret

    listing = lockgate.cli("user", "list").stdout
    assert access_key_id in listing
    assert secret not in listing

    # The running server loaded its users at start-up; a restart picks Carol up.
    lockgate.restart()
    carol = make_boto3_client(lockgate.endpoint, "json", cbor_data_path, access_key_id=access_key_id,
                              secret_access_key=secret)
    assert carol.list_pipelines()["pipelines"] == []


def test_adding_a_user_twice_or_removing_a_stranger_fails_without_changing_anything(lockgate):
    again = lockgate.cli("user", "add", "Bob", check=False)
    assert again.returncode != 0
    assert "already exists" in again.stderr
    gone = lockgate.cli("user", "remove", "Nobody", check=False)
    assert gone.returncode != 0
    listing = lockgate.cli("user", "list").stdout
    assert listing.count("arn:aws:iam::123456789012:user/") == 1, listing


def test_a_removed_user_is_an_unrecognized_client_after_a_restart(lockgate, cbor_data_path):
    lockgate.add_user("Dave", "AKIALOCKGATETESTDAVE1", "dave-secret-0123456789abcdefghijklmnopqrs")
    lockgate.restart()
    dave = make_boto3_client(lockgate.endpoint, "json", cbor_data_path, access_key_id="AKIALOCKGATETESTDAVE1",
                             secret_access_key="dave-secret-0123456789abcdefghijklmnopqrs")
    assert dave.list_pipelines()["pipelines"] == []
    lockgate.cli("user", "remove", "Dave")
    lockgate.restart()
    expect_error("UnrecognizedClientException", dave.list_pipelines)
