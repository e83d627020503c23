"""Sending to the centre over real HTTP: accepted, rejected with reasons, waiting with back-off while the centre
is down or answers without its signature, sent again after a crash.

`StandInCentre` (also used by the page tests) is a real HTTP server on 127.0.0.1 in a thread, holding a centre key,
that checks the hospital's signature and answers as told (a signed receipt, a signed refusal, an unsigned or
failing answer, or no answer at all)."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from qcflow.region import protocol
from tests.conftest import make_app
from tests.region.test_outbox import NOW, hospital_layout, sender_config  # noqa: F401 (fixture)


class StandInCentre:
    #: accept, reject, already, taken, unsigned, wrong_key, error, silent, replay (the last signed answer again)
    mode = "accept"

    def __init__(self, centre_key, hospital_public_key: str):
        self.key = centre_key
        self.hospital_public_key = hospital_public_key
        self.received: list[dict] = []
        self.standing: dict | None = None
        self.silence_seconds = 2.0
        #: The last answer sent: (status, body, signature header).
        self.last_answer: tuple[int, bytes, str | None] | None = None
        centre = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                centre.received.append({"body": body, "headers": dict(self.headers), "path": self.path,
                                        "verified": protocol.verify(centre.hospital_public_key, body,
                                                                    self.headers.get(protocol.HEADER_SIGNATURE))})
                centre.request = body
                centre.answer_submission(self, body)

            def do_GET(self):
                signed = protocol.request_text("GET", self.path, self.headers.get(protocol.HEADER_SIGNED_AT, ""))
                centre.request = signed
                verified = protocol.verify(centre.hospital_public_key, signed,
                                           self.headers.get(protocol.HEADER_SIGNATURE))
                centre.received.append({"path": self.path, "verified": verified, "headers": dict(self.headers)})
                if centre.mode == "error" or centre.standing is None:
                    return centre.send(self, 500, {"code": "error"}, sign=False)
                if not verified:
                    return centre.send(self, 401, {"code": "not_authenticated", "message": "签名不符"})
                centre.send(self, 200, centre.standing, sign=centre.mode != "unsigned",
                            key=protocol.generate_key() if centre.mode == "wrong_key" else None)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def send(self, handler, status: int, payload: dict, *, sign: bool = True, key=None) -> None:
        """Answer as the centre does: bound to the request (its status and the request's digest), signed."""
        body = protocol.canonical({**payload, "status": status, "request_digest": protocol.sha256(self.request)})
        signature = protocol.sign(key or self.key, body) if sign else None
        self.raw(handler, status, body, signature)

    def raw(self, handler, status: int, body: bytes, signature: str | None) -> None:
        self.last_answer = (status, body, signature)
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        if signature:
            handler.send_header(protocol.HEADER_SIGNATURE, signature)
        handler.end_headers()
        handler.wfile.write(body)

    def receipt(self, envelope: protocol.Envelope, number: int) -> dict:
        return {"schema": protocol.RECEIPT_SCHEMA, "submission": number, "hospital": envelope.hospital,
                "kind": envelope.kind, "period": envelope.period, "version": envelope.version,
                "digest": envelope.digest, "received_at": "2026-04-12T01:30:00Z",
                "values": len(envelope.document.get("values") or []), "replaced": None}

    def answer_submission(self, handler, body: bytes) -> None:
        mode = self.mode
        if mode == "replay":  # someone on the way answers with a genuine signed answer to an earlier request
            _status, old_body, old_signature = self.last_answer
            return self.raw(handler, 201, old_body, old_signature)
        if mode == "silent":
            time.sleep(self.silence_seconds)
            return
        if mode == "error":
            return self.send(handler, 500, {"code": "error", "message": "boom"}, sign=False)
        if not self.received[-1]["verified"]:
            return self.send(handler, 401, {"code": "not_authenticated", "message": "医院未登记或签名不符"})
        envelope = protocol.parse_envelope(body)
        if mode == "reject":
            return self.send(handler, 422, {"code": "unprocessable", "message": "数值有误，未保存。", "errors": {
                "values[0].numerator": [f"{envelope.document['values'][0]['code']}: 分子不能大于分母"]}})
        if mode == "already":
            return self.send(handler, 409, {"code": "already_received", "message": "已收到",
                                            "receipt": self.receipt(envelope, 7)})
        if mode == "taken":
            return self.send(handler, 409, {"code": "version_taken", "message": "此版本已收到另一份内容",
                                            "receipt": {**self.receipt(envelope, 7), "digest": "0" * 64}})
        receipt = self.receipt(envelope, len(self.received))
        if mode == "unsigned":
            return self.send(handler, 201, receipt, sign=False)
        if mode == "wrong_key":
            return self.send(handler, 201, receipt, key=protocol.generate_key())
        self.send(handler, 201, receipt)


def closed_port_url() -> str:
    """The address of a port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def path_of(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def centre_key():
    return protocol.generate_key()


@pytest.fixture
def centre(tmp_path, centre_key):
    own = tmp_path / "own-key.pem"
    protocol.write_private_key(str(own), protocol.generate_key())
    stand_in = StandInCentre(centre_key, protocol.public_key_text(protocol.load_private_key(str(own))))
    yield stand_in
    stand_in.close()


@pytest.fixture
def app(database_url, tmp_path, centre_key, centre):
    return make_app(database_url, str(tmp_path), **sender_config(tmp_path, centre_key, centre.url))


def queued(period="2026-02"):
    """One queued month (the only row of the outbox)."""
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import outbox
    from qcflow.core.periods import parse_month

    row = outbox.queue_month(parse_month(period), actor=Actor.system("region.queue"), now=NOW)
    db.session.commit()
    return row


def send(at=NOW):
    from qcflow.extensions import db
    from qcflow.region import outbox

    counts = outbox.send_due(now=at)
    db.session.expire_all()
    return counts


def test_a_submission_signed_by_the_hospital_is_accepted_and_its_receipt_kept(ctx, centre):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db
    import sqlalchemy as sa

    row = queued()
    assert send() == {"accept": 1, "reject": 0, "wait": 0}
    assert (row.state, row.attempts, row.answered_at, row.last_error) == ("accepted", 1, NOW, None)
    delivered = centre.received[0]
    assert delivered["verified"] and delivered["path"] == "/api/v1/centre/submissions"
    assert delivered["headers"][protocol.HEADER_HOSPITAL] == "H001"
    envelope = protocol.parse_envelope(delivered["body"])
    assert (envelope.kind, envelope.period, envelope.version, envelope.digest) == ("month", "2026-02", 1, row.digest)
    assert row.answer["digest"] == row.digest and row.answer["submission"] == 1
    actions = list(db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.object_id == str(row.id))
                                      .order_by(AuditEntry.id)))
    assert actions == ["region_outbox.queue", "region_outbox.send", "region_outbox.accept"]
    assert send(NOW + timedelta(hours=1)) == {"accept": 0, "reject": 0, "wait": 0}
    assert len(centre.received) == 1


def test_a_refusal_keeps_the_centres_reasons_per_value_and_is_not_sent_again(ctx, centre, hospital):
    row = queued()
    centre.mode = "reject"
    assert send()["reject"] == 1
    assert row.state == "rejected" and row.next_attempt_at is None
    code = protocol.parse_envelope(centre.received[0]["body"]).document["values"][0]["code"]
    assert row.answer["errors"] == {"values[0].numerator": [f"{code}: 分子不能大于分母"]}
    assert "数值有误" in row.last_error
    send(NOW + timedelta(days=1))
    assert len(centre.received) == 1
    assert office_told() == [("region.rejected", f"/region/submissions/{row.id}")]


def office_told() -> list[tuple[str, str]]:
    """The quality office's notifications about regional submissions (kind, link)."""
    import sqlalchemy as sa

    from qcflow.auth.models import User
    from qcflow.extensions import db
    from qcflow.notify.models import Notification

    return [tuple(r) for r in db.session.execute(
        sa.select(Notification.kind, Notification.link).join(User, User.id == Notification.user_id)
        .where(User.username == "quality", Notification.kind.like("region.%")).order_by(Notification.id))]


def test_a_centre_that_is_down_leaves_the_submission_waiting_with_growing_back_off_then_it_is_accepted(app, ctx,
                                                                                                       centre):
    row = queued()
    up = app.config["REGION_CENTRE_URL"]
    app.config["REGION_CENTRE_URL"] = closed_port_url()
    assert send()["wait"] == 1
    assert (row.state, row.attempts, row.next_attempt_at) == ("waiting", 1, NOW + timedelta(minutes=1))
    assert row.last_error.startswith("unreachable: ")
    assert send(NOW + timedelta(seconds=59))["wait"] == 0 and row.attempts == 1
    second = NOW + timedelta(minutes=1)
    send(second)
    assert (row.attempts, row.next_attempt_at) == (2, second + timedelta(minutes=5))
    app.config["REGION_CENTRE_URL"] = up
    assert send(second + timedelta(minutes=5))["accept"] == 1
    assert row.state == "accepted" and row.attempts == 3 and row.last_error is None


def test_the_last_back_off_repeats(app, ctx):
    from qcflow.region import outbox

    app.config["REGION_RETRY_MINUTES"] = [1, 5]
    assert [outbox.retry_delay(n) for n in (1, 2, 3, 9)] == [timedelta(minutes=m) for m in (1, 5, 5, 5)]


@pytest.mark.parametrize("mode, reason", [("error", "server_error: HTTP 500"), ("unsigned", "unsigned: HTTP 201"),
                                          ("wrong_key", "unsigned: HTTP 201")])
def test_a_failing_or_unsigned_answer_is_not_trusted_and_the_submission_waits(ctx, centre, mode, reason):
    row = queued()
    centre.mode = mode
    assert send()["wait"] == 1
    assert row.state == "waiting" and row.last_error == reason and row.answer is None
    centre.mode = "accept"
    assert send(row.next_attempt_at)["accept"] == 1


@pytest.mark.parametrize("first_mode", ["accept", "taken"])
def test_a_genuine_signed_answer_replayed_to_another_submission_is_not_trusted(ctx, centre, first_mode):
    """Someone on the way keeps a signed answer of the centre (a receipt, or a refusal) and serves it with status
    201 to the next submission: the signature holds, but the answer names another request and another status."""
    first = queued("2026-02")
    centre.mode = first_mode
    send()
    assert first.state == ("accepted" if first_mode == "accept" else "rejected")
    second = queued("2026-03")
    centre.mode = "replay"
    assert send()["wait"] == 1
    assert second.state == "waiting" and second.last_error.startswith("unbound: ")
    centre.mode = "accept"
    assert send(second.next_attempt_at)["accept"] == 1 and second.answer["period"] == "2026-03"


def test_a_receipt_for_another_submission_is_not_taken_as_this_ones(ctx, centre):
    row = queued("2026-02")
    centre.mode = "accept"
    original = centre.receipt

    def wrong_period(envelope, number):
        return {**original(envelope, number), "period": "2026-01"}

    centre.receipt = wrong_period
    assert send()["wait"] == 1
    assert row.state == "waiting" and row.last_error == "unbound: the receipt is for another submission"


def test_a_centre_that_never_answers_times_out_and_the_submission_waits(ctx, centre):
    row = queued()
    centre.mode = "silent"
    assert send()["wait"] == 1
    assert row.state == "waiting" and row.last_error.startswith("timeout: ")


def test_a_version_the_centre_already_holds_counts_as_accepted_but_another_document_under_it_is_refused(ctx, centre):
    row = queued()
    centre.mode = "already"
    assert send()["accept"] == 1 and row.state == "accepted" and row.answer["digest"] == row.digest
    other = queued("2026-03")
    centre.mode = "taken"
    assert send()["reject"] == 1 and other.state == "rejected" and other.answer["code"] == "version_taken"


def test_a_submission_stuck_in_sent_after_a_crash_is_sent_again_after_twice_the_timeout(ctx, centre):
    from qcflow.extensions import db
    from qcflow.region import outbox

    row = queued()
    outbox._mark_sent(row, actor=outbox.SENDER, now=NOW)
    db.session.commit()  # the process died here, after the commit, before or while the request left
    assert send(NOW + timedelta(seconds=1))["accept"] == 0 and row.state == "sent"
    assert send(NOW + timedelta(seconds=3))["accept"] == 1
    assert row.state == "accepted" and row.attempts == 2 and len(centre.received) == 1


def test_a_rejected_version_is_sent_again_once_the_quality_office_requeues_it(ctx, centre, hospital):
    from qcflow.core.actors import Actor
    from qcflow.extensions import db
    from qcflow.region import outbox

    row = queued()
    centre.mode = "reject"
    send()
    centre.mode = "accept"
    outbox.requeue(row, actor=Actor.for_user(hospital["quality"]), now=NOW + timedelta(hours=1),
                   expected_version=row.version)
    db.session.commit()
    assert row.state == "queued"
    assert send(NOW + timedelta(hours=1))["accept"] == 1
    assert [protocol.parse_envelope(r["body"]).version for r in centre.received] == [1, 1]


def test_send_now_sends_one_row_at_once_and_a_nurse_may_not(ctx, centre, hospital):
    from qcflow.core.actors import Actor
    from qcflow.core.errors import Forbidden
    from qcflow.region import outbox

    row = queued()
    with pytest.raises(Forbidden):
        outbox.send_now(row, actor=Actor.for_user(hospital["nurse"]), now=NOW)
    assert outbox.send_now(row, actor=Actor.for_user(hospital["quality"]), now=NOW) == "accept"
    assert row.state == "accepted"


def test_the_sending_job_says_what_it_did_and_what_is_missing(app, ctx, centre):
    from qcflow.region import jobs

    queued()
    assert jobs.send_submissions(NOW) == "accepted 1, rejected 0, waiting 0"
    app.config["HOSPITAL_CODE"] = None
    assert "HOSPITAL_CODE" in jobs.send_submissions(NOW)
