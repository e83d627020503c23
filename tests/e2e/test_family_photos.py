"""A daughter on a phone files the public form with a photo of the wet floor, keeps only the receipt code (no
internal number shown), then answers on the receipt page with another photo: she is told it was sent, sees
thumbnails of her own photos, a button that does not say "anonymously" (she left her phone number) and the
status in plain words."""
from __future__ import annotations

import io
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from PIL import Image

from tests.e2e.conftest import E2E, check_no_horizontal_scroll, sending_report, shot

pytestmark = E2E


def a_photo(path, colour):
    image = Image.new("RGB", (640, 480), colour)
    image.paste((240, 240, 250), (0, 300, 640, 480))
    out = io.BytesIO()
    image.save(out, "JPEG")
    path.write_bytes(out.getvalue())
    return str(path)


def test_a_family_sends_photos_with_the_report_and_with_an_answer(server, contexts, tmp_path):
    page = contexts("phone").new_page()
    page.goto("/report/patient")
    assert "不良事件" not in page.inner_text("body") and "质控办" not in page.inner_text("main")
    page.check("input[name=public_role][value=family]")
    page.select_option("#department_id", index=1)
    page.fill("#occurred_on", datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat())
    page.fill("#description", "病房走廊卫生间门口地面有水，没有警示牌，我父亲滑倒了。")
    page.fill("#contact_phone", "13800138000")
    page.set_input_files("#files", a_photo(tmp_path / "floor.jpg", (40, 90, 160)))
    shot(page, "family-01-form-with-photo")
    with sending_report(page):
        page.click("form button.primary")
    code = page.inner_text("#receipt-code").strip()
    assert len(code) >= 20 and not page.locator("#receipt-reference-line").is_visible()
    assert check_no_horizontal_scroll(page)
    shot(page, "family-02-receipt-code", full_page=False)

    page.goto("/receipt")
    page.fill("[name=receipt_code]", code)
    with page.expect_navigation():
        page.click("form button[type=submit]")
    assert page.inner_text("#plain-status").strip() == "已收到，我们会进行调查"
    assert page.locator("#own-files img.receipt-thumb").count() == 1
    assert page.inner_text("form button.primary").strip() == "发送"
    page.fill("#message", "补充：当时走廊灯也不亮。")
    page.set_input_files("#files", a_photo(tmp_path / "light.jpg", (200, 160, 40)))
    with page.expect_navigation():
        page.click("form button.primary")
    assert "您的答复已发送" in page.inner_text("#receipt-sent")
    assert page.locator("#own-files img.receipt-thumb").count() == 2
    assert page.evaluate("[...document.querySelectorAll('#own-files img')].every(i => i.naturalWidth > 0)")
    assert "补充：当时走廊灯也不亮。" in page.inner_text("main") and check_no_horizontal_scroll(page)
    assert not re.search(r"AE-\d{4}-", page.inner_text("main"))
    shot(page, "family-03-receipt-after-reply")
