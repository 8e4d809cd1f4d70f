"""Cross-site form posts are refused, and every response carries the security headers."""

import pytest

pytestmark = pytest.mark.slow

FOREIGN = {"Origin": "https://evil.example"}


@pytest.fixture
def cookie_client(server):
    """A browser with a workspace cookie, as after a first visit (its posts come without Origin here)."""
    client = server.__class__(server.app)
    client.get("/")
    return client


def test_a_form_post_from_another_site_changes_nothing(cookie_client):
    created = cookie_client.post("/models", data={"starter": "dense"}, headers={"Origin": "http://testserver"},
                                 follow_redirects=False)
    assert created.status_code == 303
    url = created.headers["location"]
    for path, data in (("/models", {"starter": "dense"}), (f"{url}/delete", {}), (f"{url}/rename", {"name": "x"})):
        refused = cookie_client.post(path, data=data, headers=FOREIGN)
        assert refused.status_code == 403 and "did not come from one of LayerLab&#39;s own pages" in refused.text
    models = cookie_client.get("/api/v1/models").json()
    assert [m["name"] for m in models] == ["Dense classifier"]


def test_a_post_without_origin_or_referer_is_refused_and_a_same_site_referer_is_enough(cookie_client):
    assert cookie_client.post("/models", data={"starter": "dense"}).status_code == 403
    allowed = cookie_client.post("/models", data={"starter": "dense"}, headers={"Referer": "http://testserver/"},
                                 follow_redirects=False)
    assert allowed.status_code == 303


def test_the_api_with_the_cookie_is_checked_and_with_a_bearer_token_it_is_not(cookie_client, api):
    refused = cookie_client.post("/api/v1/models", json={"starter": "dense"}, headers=FOREIGN)
    assert refused.status_code == 403 and refused.json()["detail"].startswith("This request was refused")
    assert api.post("/api/v1/models", json={"starter": "dense"}, headers=FOREIGN).status_code == 201


@pytest.mark.parametrize("path", ["/", "/runs", "/api/v1/catalog", "/static/app.css", "/no/such/page",
                                  "/api/v1/models/999", "/docs"])
def test_every_response_carries_the_security_headers(cookie_client, path):
    headers = cookie_client.get(path).headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["referrer-policy"] == "same-origin"
