"""The indicator catalogue's pages on a phone (390 px): no sideways scrolling, every field labelled, the setup
form opens on the row and a department head keeps the department's own indicators."""
from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, check_accessible_form_fields, check_no_horizontal_scroll, shot

pytestmark = E2E


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_catalogue_and_an_indicators_page_fit_a_phone(server, contexts, language):
    page = contexts("phone", user="quality").new_page()
    for path in ("/indicators/catalogue", "/indicators/catalogue/pain_assessment_rate",
                 "/indicators/catalogue/local"):
        page.goto(f"{path}?lang={language}")
        assert check_no_horizontal_scroll(page), path
        assert check_accessible_form_fields(page) == [], path
    page.goto(f"/indicators/catalogue?lang={language}")
    row = page.locator("#ind-pain_assessment_rate")
    row.locator("summary").click()
    assert row.locator("select[name=method]").is_visible()
    assert check_no_horizontal_scroll(page)
    shot(page, f"catalogue-phone-{language}")


def test_a_department_head_creates_an_own_indicator_on_a_phone(server, contexts):
    page = contexts("phone", user="head").new_page()
    page.goto("/indicators/catalogue/local")
    page.fill("input[name=name]", "术后镇痛满意度")
    page.fill("textarea[name=definition]", "满意例数/同期调查例数")
    page.locator("#local-form + form button[type=submit]").click()
    assert "已新建指标" in page.inner_text("main")
    assert page.locator("#own tr").count() >= 1 and check_no_horizontal_scroll(page)
    shot(page, "catalogue-local-phone")
