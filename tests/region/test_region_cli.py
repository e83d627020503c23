"""`flask … qcflow region`: the installation's key (made once, never overwritten, its public key printed last) and
queueing and sending by hand."""
from __future__ import annotations

import os
import stat

import pytest

from qcflow.region import protocol
from tests.conftest import make_app
from tests.region.test_outbox import hospital_layout  # noqa: F401 (fixture)
from tests.region.test_sending import centre, centre_key  # noqa: F401 (fixtures)


@pytest.fixture
def keyless(database_url, tmp_path):
    return make_app(database_url, str(tmp_path), REGION_KEY_FILE=str(tmp_path / "keys" / "region.pem"))


def test_keygen_writes_the_private_key_for_the_owner_alone_and_prints_the_public_key_last(keyless):
    path = keyless.config["REGION_KEY_FILE"]
    result = keyless.test_cli_runner().invoke(args=["qcflow", "region", "keygen"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert lines[-1] == protocol.public_key_text(protocol.load_private_key(path))
    assert any("centre" in line for line in lines[:-1])
    shown = keyless.test_cli_runner().invoke(args=["qcflow", "region", "public-key"])
    assert shown.exit_code == 0 and shown.output.strip().splitlines()[-1] == lines[-1]
    # The same fingerprint the centre's pages show beside the key it registered.
    fingerprint = protocol.fingerprint(lines[-1])
    assert fingerprint in result.output and f"fingerprint {fingerprint}" in shown.output


def test_keygen_refuses_to_overwrite_a_key(keyless):
    path = keyless.config["REGION_KEY_FILE"]
    runner = keyless.test_cli_runner()
    first = runner.invoke(args=["qcflow", "region", "keygen"]).output.strip().splitlines()[-1]
    again = runner.invoke(args=["qcflow", "region", "keygen"])
    assert again.exit_code == 1 and "exists already" in again.output
    assert protocol.public_key_text(protocol.load_private_key(path)) == first


def test_keygen_on_a_centre_says_to_hand_the_key_to_the_hospitals(database_url, tmp_path):
    app = make_app(database_url, str(tmp_path), INSTALLATION_ROLE="centre",
                   REGION_KEY_FILE=str(tmp_path / "centre.pem"))
    result = app.test_cli_runner().invoke(args=["qcflow", "region", "keygen"])
    assert result.exit_code == 0 and "REGION_CENTRE_KEY" in result.output
    assert protocol.is_public_key(result.output.strip().splitlines()[-1])


def test_public_key_without_a_key_names_the_command(keyless):
    result = keyless.test_cli_runner().invoke(args=["qcflow", "region", "public-key"])
    assert result.exit_code == 1 and "region keygen" in result.output


def test_queue_and_send_say_what_they_did(database_url, tmp_path, centre, centre_key):
    from tests.region.test_outbox import sender_config

    config = sender_config(tmp_path, centre_key, centre.url)
    app = make_app(database_url, str(tmp_path), **{**config, "REGION_SEND_FROM": None})
    runner = app.test_cli_runner()
    queued = runner.invoke(args=["qcflow", "region", "queue"])
    assert queued.exit_code == 0, queued.output
    assert "queued month" in queued.output and "version 1" in queued.output
    assert "nothing new to queue" in runner.invoke(args=["qcflow", "region", "queue"]).output
    sent = runner.invoke(args=["qcflow", "region", "send"])
    months = queued.output.count("queued month")
    # The months of the last 12 whose deadline has passed (11 or 12, by the day of the month today).
    assert months in (11, 12)
    assert sent.exit_code == 0 and sent.output.strip() == f"accepted {months}, rejected 0, waiting 0"
    assert all(r["verified"] for r in centre.received)


def test_queue_refuses_without_the_settings(keyless):
    result = keyless.test_cli_runner().invoke(args=["qcflow", "region", "queue"])
    assert result.exit_code == 1 and "REGION_CENTRE_URL" in result.output
