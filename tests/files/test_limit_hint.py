"""The forms' hints give the file limit the hospital configured, not a number written into the page."""
import pytest


@pytest.mark.parametrize("path", ["/report", "/report/patient"])
def test_the_upload_hints_follow_the_configured_file_limit(app, path):
    app.config["ATTACHMENT_MAX_BYTES"] = 5 * 1024 * 1024
    page = app.test_client().get(path).get_data(as_text=True)
    assert "5 MB" in page and "10 MB" not in page
