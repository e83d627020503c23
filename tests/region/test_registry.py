"""The centre's registry of hospitals: administrators add, change, re-key and retire them (audited, optimistic
locking); centre staff read; nobody else."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from qcflow.region import protocol

NOW = datetime(2026, 4, 3, 2, 0, tzinfo=timezone.utc)
PATH = "/api/v1/centre/hospitals"


@pytest.fixture
def app(centre_app):
    return centre_app


@pytest.fixture
def hospital_layout():
    """The centre's own people: an administrator, a member of the centre's staff, and a quality user."""
    departments = {"office": {"code": "QCC", "name": "质控中心办公室"}}
    people = {"admin": ("admin", "admin", "office"), "staff": ("staff", "centre", "office"),
              "quality": ("quality", "quality", "office")}
    return departments, people


def key_text() -> str:
    return protocol.public_key_text(protocol.generate_key())


def data(code="H001", **changes):
    return {"code": code, "name": "郑州市第一人民医院", "name_en": "Zhengzhou First People's Hospital",
            "level": "tertiary", "ownership": "public", "region": "郑州市", "public_key": key_text(), **changes}


def entries(action=None):
    from qcflow.core.audit import AuditEntry
    from qcflow.extensions import db

    stmt = sa.select(AuditEntry).order_by(AuditEntry.seq)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    return [(e.action, e.object_id, json.loads(e.detail)) for e in db.session.scalars(stmt)
            if e.action.startswith("region_hospital")]


def test_add_change_rekey_retire_and_take_back_are_audited(ctx, actor_of):
    from qcflow.extensions import db
    from qcflow.region import registry

    admin = actor_of("admin")
    first = data()
    row = registry.add_hospital(first, actor=admin, now=NOW)
    db.session.commit()
    assert (row.code, row.is_active, row.version) == ("H001", True, 1)
    row = registry.update_hospital(row, {"region": "开封市", "level": "secondary"}, 1, actor=admin, now=NOW)
    new_key = key_text()
    row = registry.update_hospital(row, {"public_key": new_key}, row.version, actor=admin, now=NOW)
    row = registry.set_active(row, False, row.version, actor=admin, now=NOW)
    row = registry.set_active(row, True, row.version, actor=admin, now=NOW)
    db.session.commit()
    logged = entries()
    assert [action for action, _id, _detail in logged] == [
        "region_hospital.create", "region_hospital.update", "region_hospital.change_key",
        "region_hospital.retire", "region_hospital.reactivate"]
    assert all(object_id == "H001" for _a, object_id, _d in logged)
    created = logged[0][2]["after"]
    assert created["key_fingerprint"] == registry.fingerprint(first["public_key"]) and "public_key" not in created
    assert logged[1][2] == {"before": {"level": "tertiary", "region": "郑州市"},
                            "after": {"level": "secondary", "region": "开封市"}}
    assert logged[2][2] == {"before": {"key_fingerprint": registry.fingerprint(first["public_key"])},
                            "after": {"key_fingerprint": registry.fingerprint(new_key)}}
    assert row.public_key == new_key and row.is_active


def test_a_change_from_a_stale_version_is_409_and_changes_nothing(ctx, actor_of):
    from qcflow.core.errors import Conflict
    from qcflow.extensions import db
    from qcflow.region import registry

    row = registry.add_hospital(data(), actor=actor_of("admin"), now=NOW)
    registry.update_hospital(row, {"name": "新名"}, 1, actor=actor_of("admin"), now=NOW)
    db.session.commit()
    with pytest.raises(Conflict):
        registry.update_hospital(row, {"name": "旧的画面"}, 1, actor=actor_of("admin"), now=NOW)
    assert row.name == "新名"


@pytest.mark.parametrize("changes, field", [
    ({"public_key": "AAAA"}, "public_key"), ({"public_key": "x" * 44}, "public_key"),
    ({"code": "../H1"}, "code"), ({"code": "H" * 41}, "code"), ({"name": " "}, "name"),
    ({"level": "primary"}, "level"), ({"ownership": "mixed"}, "ownership"), ({"region": ""}, "region"),
    ({"name": "医院\x00"}, "name"),
])
def test_bad_fields_are_refused_each_named(ctx, actor_of, changes, field):
    from qcflow.core.errors import Unprocessable
    from qcflow.region import registry

    with pytest.raises(Unprocessable) as refused:
        registry.add_hospital(data(**changes), actor=actor_of("admin"), now=NOW)
    assert field in refused.value.errors


def test_a_duplicate_code_or_key_is_refused(ctx, actor_of):
    from qcflow.core.errors import Unprocessable
    from qcflow.extensions import db
    from qcflow.region import registry

    first = registry.add_hospital(data(), actor=actor_of("admin"), now=NOW)
    other = registry.add_hospital(data("H002"), actor=actor_of("admin"), now=NOW)
    db.session.commit()
    with pytest.raises(Unprocessable) as same_code:
        registry.add_hospital(data("H001"), actor=actor_of("admin"), now=NOW)
    assert "code" in same_code.value.errors
    with pytest.raises(Unprocessable) as same_but_case:  # h001 would read as H001 on every page
        registry.add_hospital(data("h001"), actor=actor_of("admin"), now=NOW)
    assert "code" in same_but_case.value.errors
    with pytest.raises(Unprocessable) as same_key:
        registry.add_hospital(data("H003", public_key=first.public_key), actor=actor_of("admin"), now=NOW)
    assert "public_key" in same_key.value.errors
    with pytest.raises(Unprocessable) as taken:
        registry.update_hospital(other, {"public_key": first.public_key}, other.version, actor=actor_of("admin"),
                                 now=NOW)
    assert "public_key" in taken.value.errors


def test_another_spelling_of_a_registered_key_is_the_same_key(ctx, actor_of):
    """Base64 leaves two bits of the 44th character unused: a second text for the same 32 bytes must not register
    the same key for a second hospital (its holder would sign as both)."""
    import base64

    from qcflow.core.errors import Unprocessable
    from qcflow.extensions import db
    from qcflow.region import protocol, registry

    first = registry.add_hospital(data(), actor=actor_of("admin"), now=NOW)
    db.session.commit()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(first.public_key[42])
    respelt = first.public_key[:42] + alphabet[last ^ 1] + "="
    assert respelt != first.public_key and base64.b64decode(respelt) == base64.b64decode(first.public_key)
    assert protocol.is_public_key(respelt)
    with pytest.raises(Unprocessable) as same_key:
        registry.add_hospital(data("H003", public_key=respelt), actor=actor_of("admin"), now=NOW)
    assert "public_key" in same_key.value.errors


def test_the_api_writes_for_administrators_and_reads_for_centre_staff(client, tokens):
    admin, staff, quality = tokens("admin"), tokens("staff"), tokens("quality")
    created = client.post(PATH, json=data(), headers=admin)
    assert created.status_code == 201, created.json
    assert created.json["months_sent"] == 0 and created.json["version"] == 1
    assert client.post(PATH, json=data("H002"), headers=staff).status_code == 403
    assert client.post(PATH, json=data("H003"), headers=quality).status_code == 403
    assert client.get(PATH, headers=quality).status_code == 403
    listed = client.get(PATH, headers=staff)
    assert listed.status_code == 200 and [h["code"] for h in listed.json["items"]] == ["H001"]
    assert client.get(f"{PATH}/H001", headers=staff).json["name"] == "郑州市第一人民医院"
    assert client.patch(f"{PATH}/H001", json={"region": "洛阳市", "version": 1}, headers=staff).status_code == 403
    changed = client.patch(f"{PATH}/H001", json={"region": "洛阳市", "version": 1}, headers=admin)
    assert changed.status_code == 200 and changed.json["region"] == "洛阳市" and changed.json["version"] == 2
    stale = client.patch(f"{PATH}/H001", json={"is_active": False, "version": 1}, headers=admin)
    assert stale.status_code == 409
    retired = client.patch(f"{PATH}/H001", json={"is_active": False, "version": 2}, headers=admin)
    assert retired.status_code == 200 and retired.json["is_active"] is False
    assert client.get(PATH + "?active=true", headers=staff).json["items"] == []
    duplicate = client.post(PATH, json=data("H001"), headers=admin)
    assert duplicate.status_code == 422 and "code" in duplicate.json["errors"]
    assert client.get(f"{PATH}/H404", headers=staff).status_code == 404


def test_the_list_filters_and_pages_by_code(client, tokens):
    admin = tokens("admin")
    for n, level in ((1, "tertiary"), (2, "secondary"), (3, "tertiary")):
        assert client.post(PATH, json=data(f"H00{n}", level=level, region="开封市" if n == 3 else "郑州市"),
                           headers=admin).status_code == 201
    first = client.get(PATH + "?limit=2", headers=admin).json
    assert [h["code"] for h in first["items"]] == ["H001", "H002"] and first["next_cursor"] == "H002"
    second = client.get(PATH + f"?limit=2&cursor={first['next_cursor']}", headers=admin).json
    assert [h["code"] for h in second["items"]] == ["H003"] and second["next_cursor"] is None
    tertiary = client.get(PATH + "?level=tertiary&region=郑州市", headers=admin).json
    assert [h["code"] for h in tertiary["items"]] == ["H001"]


def test_the_cli_adds_and_lists_hospitals(app, ctx):
    from qcflow.region.registry import hospitals_cli

    runner = app.test_cli_runner()
    key = key_text()
    added = runner.invoke(hospitals_cli, ["add", "--code", "H100", "--name", "开封市人民医院", "--level", "secondary",
                                          "--ownership", "public", "--region", "开封市", "--key", key])
    assert added.exit_code == 0, added.output
    assert "H100" in added.output
    bad = runner.invoke(hospitals_cli, ["add", "--code", "H101", "--name", "某医院", "--level", "secondary",
                                        "--ownership", "public", "--region", "开封市", "--key", key])
    assert bad.exit_code == 2 and "key" in bad.output.lower()
    listed = runner.invoke(hospitals_cli, ["list"])
    assert listed.exit_code == 0 and "H100" in listed.output and "开封市人民医院" in listed.output
    assert "H101" not in listed.output
