"""The administrator's reference lists show every stored fact in words, and import results as labels."""
import io
import re

import pytest

from tests.conftest import csrf_from, logged_in


@pytest.fixture
def admin_client(app, reference, create_user):
    from qcflow.extensions import db

    create_user(username="adm", roles=("admin",))
    db.session.commit()
    return logged_in(app, "adm")


def cells(page: str, table_id: str) -> list[str]:
    table = page.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S)]


def test_the_staff_list_shows_department_account_and_specialty_label(admin_client, reference):
    reference.push("staff", [{"his_id": "S3", "name": "钱医生", "department_code": "GS", "specialty": "oncology",
                              "username": "adm"}])
    page = admin_client.get("/admin/reference/staff").get_data(as_text=True)
    shown = cells(page, "reference-rows")
    assert "GS · 普通外科" in shown and "ANES · 麻醉科" in shown
    assert "麻醉科" in shown and "肿瘤科" in shown and "anaesthesia" not in shown
    assert any(c.startswith("adm · ") for c in shown) and "无账号" in shown
    assert "None" not in shown and "" not in shown
    assert "<th>姓名</th>" in page and "<th>专科</th>" in page  # a person's name, not a thing's (名称)


def test_the_authorisations_name_the_staff_member_and_an_open_end(admin_client):
    page = admin_client.get("/admin/reference/authorisations").get_data(as_text=True)
    shown = cells(page, "reference-rows")
    assert "S1 · 李刀" in shown and "长期有效" in shown and "2026-12-31" in shown
    assert "None" not in page and "" not in shown
    english = admin_client.get("/admin/reference/authorisations?lang=en").get_data(as_text=True)
    assert "open-ended" in cells(english, "reference-rows")


def upload_staff(client, csv: str, query: str = ""):
    """Upload a staff CSV on the reference page as the administrator does."""
    token = csrf_from(client, "/admin/reference/staff")
    return client.post(f"/admin/reference/staff{query}", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(csv.encode()), "staff.csv")})


def test_upload_results_are_labels(admin_client):
    csv = "his_id,name,department_code,specialty\nS1,李刀,GS,general_surgery\nS9,孙医生,GS,oncology\nS2,赵麻,ANES,麻醉\n"
    response = upload_staff(admin_client, csv)
    assert response.status_code == 422
    shown = cells(response.get_data(as_text=True), "import-results")
    assert "无变化" in shown and "新增" in shown and "已拒绝" in shown
    assert not {"created", "unchanged", "error"} & set(shown)
    # The refusal names the specialties as the page does, never their codes.
    refusal = next(c for c in shown if "麻醉科" in c)
    assert "“麻醉”" in refusal and "普通外科" in refusal and not re.search(r"[a-z]+_[a-z]+|anaesthesia", refusal)


def test_a_specialty_may_be_written_as_its_label_in_either_language(admin_client):
    import sqlalchemy as sa

    from qcflow.clinical.models import Staff
    from qcflow.extensions import db

    csv = "his_id,name,department_code,specialty\nS7,孙麻醉,ANES,麻醉科\nS8,周心内,GS,cardiology\nS9,吴肿瘤,GS,Oncology\n"
    assert upload_staff(admin_client, csv).status_code == 200
    stored = dict(db.session.execute(sa.select(Staff.his_id, Staff.specialty).where(
        Staff.his_id.in_(["S7", "S8", "S9"]))).all())
    assert stored == {"S7": "anaesthesia", "S8": "cardiology", "S9": "oncology"}


@pytest.mark.parametrize("lang, words, absent", [
    ("zh", ["匹配依据", "病案号", "第一行为列名"], ["主键", "表头"]),
    ("en", ["Matched by", "record number", "first row the column names"], ["key", "Key", "header row"]),
])
def test_the_upload_page_says_how_rows_are_matched_in_a_hospital_users_words(admin_client, lang, words, absent):
    csv = "his_id,name,department_code,specialty\nS1,李刀,GS,general_surgery\n"
    html = upload_staff(admin_client, csv, f"?lang={lang}").get_data(as_text=True)
    section = re.sub(r"<[^>]+>", " ", html[html.index("<main"):])
    assert [word for word in words if word not in section] == [], section[:1500]
    assert [word for word in absent if re.search(rf"(?<![A-Za-z-]){word}(?![A-Za-z-])", section)] == []
