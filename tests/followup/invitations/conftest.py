"""Fixtures for invitations: the follow-up fixtures, with a sender configured, and an invited call."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.followup.conftest import enrol, frozen, fu_now, hospital_layout, tasks_of, ward  # noqa: F401

LINK_BASE = "https://fu.hospital.example"


@pytest.fixture
def senders(app):
    """One SMS gateway configured (the tests that send start a real one and point the URL at it)."""
    app.config.update(INVITATION_SENDERS=[{"channel": "sms", "url": "http://127.0.0.1:9/unused"}],
                      INVITATION_LINK_BASE=LINK_BASE)
    return app.config["INVITATION_SENDERS"]


@pytest.fixture
def surgery_call(ctx, enrol, create_patient, frozen, senders):
    """A four-level-surgery patient operated 30 days ago (born 1961, ID ending 123X): the +30-day call is open."""
    from qcflow.extensions import db
    from qcflow.followup.models import Task

    patient = create_patient(name="王建国", mrn="BA4001", phone="13912345678", birth_on=date(1961, 5, 3),
                             id_number="11010519610503123X")
    plan = enrol("four_level_surgery", patient=patient, anchor_at=frozen - timedelta(days=30), now=frozen)
    db.session.commit()
    return db.session.scalar(sa.select(Task).where(Task.plan_id == plan.id, Task.occurrence == 1))


@pytest.fixture
def invited(surgery_call, frozen):
    """The surgery call's invitation, created by the real job step and sent (the gateway accepted it)."""
    from qcflow.extensions import db
    from qcflow.followup.invitations import queries, services

    assert services.invite_due(frozen) == 1
    outgoing, = services.take_due(frozen)
    services.record_send(outgoing.invitation_id, outgoing.kind, ok=True, provider_message_id="gw-1", now=frozen)
    db.session.commit()
    return queries.invitation_of(surgery_call)


@pytest.fixture
def gateway(app, senders):
    """A real fake SMS gateway on localhost, configured as the hospital's only sender (signing its webhooks)."""
    from tests.followup.invitations.gateway import FakeGateway

    with FakeGateway() as fake:
        app.config.update(INVITATION_SENDERS=[{"channel": "sms", "url": fake.url, "secret": "webhook-secret",
                                               "timeout": 0.5}],
                          INVITATION_RETRY_MINUTES=[5, 30], HOSPITAL_NAME="郑州市第一人民医院")
        yield fake
