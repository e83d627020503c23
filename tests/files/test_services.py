"""Adding, reading and removing files: limits, anonymous files, audits, rollback and the orphan sweep."""
import io
import os
from datetime import timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from qcflow.core.errors import Forbidden, Unprocessable
from tests.files.conftest import SERIAL, docx, jpeg_with_exif


def stored_files(app) -> list[str]:
    root = os.path.join(app.instance_path, "attachments")
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]


def audits(action):
    from qcflow.core.audit import AnonymousAuditEntry, AuditEntry, flush_pending
    from qcflow.extensions import db

    flush_pending()
    return [e for model in (AuditEntry, AnonymousAuditEntry)
            for e in db.session.scalars(sa.select(model).where(model.action == action))]


def test_a_staff_photo_is_stored_clean_with_its_name_and_every_read_is_audited(app, case, actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services
    from qcflow.files.storage import storage

    added = services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif(), "C:\\photos\\床旁\x07.jpg"),
                            stage=case.state, actor=actor_of("quality"), now=at)
    db.session.commit()
    stored = storage().get(added.storage_key)
    assert SERIAL.encode() not in stored and dict(Image.open(io.BytesIO(stored)).getexif()) == {}
    assert added.original_name == "床旁.jpg" and added.uploaded_at == at and added.uploaded_by_user_id
    assert added.stage == "submitted" and added.kind == "image" and added.thumbnail_key and added.id < 2**30
    for thumbnail in (False, True, False):
        services.read(added, actor=actor_of("head"), now=at, thumbnail=thumbnail)
    reads = audits("attachment.read")
    assert len(reads) == 3 and {r.actor for r in reads} == {f"user:{actor_of('head').user_id}"}
    assert [a.object_id for a in audits("attachment.add")] == [str(case.id)]
    for path in stored_files(app):
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_an_anonymous_photo_has_no_name_no_user_a_random_id_and_only_its_hour(case, at):
    from qcflow.core.actors import Actor
    from qcflow.files import services

    added = services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif(), "IMG_张三.jpg"),
                            stage=case.state, actor=Actor.anonymous(), now=at, anonymous=True, from_reporter=True)
    assert added.original_name is None and added.uploaded_by_user_id is None and added.id >= 2**30
    assert added.uploaded_at == at.replace(minute=0, second=0) and added.from_reporter
    assert added.name == f"attachment-{added.id}.jpg"
    entry, = audits("attachment.add")
    assert entry.actor == "anonymous" and entry.at == at.replace(minute=0, second=0)


def test_the_limits_per_file_per_record_and_on_the_number_of_files(app, case, actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services
    from qcflow.files.models import Attachment

    app.config.update(ATTACHMENT_MAX_BYTES=4000, ATTACHMENT_MAX_BYTES_PER_RECORD=5000, ATTACHMENT_MAX_FILES_PER_RECORD=2)
    quality = actor_of("quality")
    with pytest.raises(Unprocessable) as too_big:
        services.attach("adverse_event", case.id, services.Upload(b"%PDF-" + b"0" * 4000), stage="submitted",
                        actor=quality, now=at)
    assert "limit per file" in too_big.value.errors["file"][0] or "上限" in too_big.value.errors["file"][0]
    services.attach("adverse_event", case.id, services.Upload(b"%PDF-" + b"0" * 3000), stage="submitted",
                    actor=quality, now=at)
    with pytest.raises(Unprocessable):  # 3005 + 2005 > 5000
        services.attach("adverse_event", case.id, services.Upload(b"%PDF-" + b"0" * 2000), stage="submitted",
                        actor=quality, now=at)
    services.attach("adverse_event", case.id, services.Upload(docx()), stage="submitted", actor=quality, now=at)
    with pytest.raises(Unprocessable):  # the third file
        services.attach("adverse_event", case.id, services.Upload(b"%PDF-1"), stage="submitted", actor=quality, now=at)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 2


def test_anonymous_reports_take_photos_only(case, at):
    from qcflow.core.actors import Actor
    from qcflow.files import services

    with pytest.raises(Unprocessable):
        services.attach("adverse_event", case.id, services.Upload(b"%PDF-1.4 ..."), stage="submitted",
                        actor=Actor.anonymous(), now=at, anonymous=True, images_only=True)


def test_a_rolled_back_transaction_deletes_what_it_stored_and_the_sweep_takes_what_a_crash_left(app, case,
                                                                                                actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services
    from qcflow.files.models import Attachment
    from qcflow.files.storage import storage

    services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif()), stage="submitted",
                    actor=actor_of("quality"), now=at)
    assert len(stored_files(app)) == 2  # the photo and its thumbnail
    db.session.rollback()
    assert stored_files(app) == [] and db.session.scalar(sa.select(sa.func.count()).select_from(Attachment)) == 0
    # A process that died between storing and committing leaves bytes without a row.
    kept = services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif()), stage="submitted",
                           actor=actor_of("quality"), now=at)
    db.session.commit()
    orphan = storage().put(b"left by a crash")
    assert services.sweep_orphans(at) == 0  # younger than a day: perhaps a request still in flight
    later = at + timedelta(days=400)
    assert services.sweep_orphans(later) == 1
    with pytest.raises(Exception):
        storage().get(orphan)
    assert storage().get(kept.storage_key) and storage().get(kept.thumbnail_key)


def test_only_the_uploader_or_the_quality_office_removes_a_file_and_its_bytes_go_after_the_commit(app, case,
                                                                                                  actor_of, at):
    from qcflow.extensions import db
    from qcflow.files import services

    added = services.attach("adverse_event", case.id, services.Upload(jpeg_with_exif()), stage="submitted",
                            actor=actor_of("head"), now=at)
    db.session.commit()
    with pytest.raises(Forbidden):
        services.remove(added, actor=actor_of("other_head"), now=at)
    services.remove(added, actor=actor_of("quality"), now=at)
    assert len(stored_files(app)) == 2
    db.session.commit()
    assert stored_files(app) == [] and added.removed_at == at
    assert services.files_of("adverse_event", case.id) == [] and audits("attachment.remove")
