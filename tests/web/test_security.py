"""Cross-site form posts are refused, and every response carries the security headers."""

import re

import pytest

pytestmark = pytest.mark.slow

FOREIGN = {"Origin": "https://evil.example"}


@pytest.fixture
def cookie_client(server):
    """A browser with a session cookie after making its first model (its posts come without Origin here)."""
    client = server.__class__(server.app)
    created = client.post("/models", data={"starter": "dense"}, headers={"Origin": "http://testserver"},
                          follow_redirects=False)
    assert created.status_code == 303
    client.editor_url = created.headers["location"]
    return client


def test_a_form_post_from_another_site_changes_nothing(cookie_client):
    url = cookie_client.editor_url
    for path, data in (("/models", {"starter": "dense"}), (f"{url}/delete", {}), (f"{url}/rename", {"name": "x"})):
        refused = cookie_client.post(path, data=data, headers=FOREIGN)
        assert refused.status_code == 403 and "did not come from one of LayerLab&#39;s own pages" in refused.text
    models = cookie_client.get("/api/v1/models").json()
    assert [m["name"] for m in models] == ["Dense classifier"]


def csrf_of(client) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/").text).group(1)


def test_a_post_without_origin_or_referer_is_refused_and_a_same_site_referer_is_enough(cookie_client):
    token = csrf_of(cookie_client)
    assert cookie_client.post("/models", data={"starter": "dense", "csrf": token}).status_code == 403
    allowed = cookie_client.post("/models", data={"starter": "dense", "csrf": token},
                                 headers={"Referer": "http://testserver/"}, follow_redirects=False)
    assert allowed.status_code == 303


def test_a_page_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(cookie_client):
    same_site = {"Origin": "http://testserver"}
    for data, headers in (({"starter": "dense"}, same_site), ({"starter": "dense", "csrf": "forged"}, same_site),
                          ({"starter": "dense"}, {**same_site, "X-CSRF-Token": "forged"})):
        refused = cookie_client.post("/models", data=data, headers=headers)
        assert refused.status_code == 403 and "security token is missing or wrong" in refused.text
    assert len(cookie_client.get("/api/v1/models").json()) == 1
    token = csrf_of(cookie_client)
    for data, headers in (({"starter": "dense", "csrf": token}, same_site),  # a form without JavaScript
                          ({"starter": "dense"}, {**same_site, "X-CSRF-Token": token})):  # htmx
        assert cookie_client.post("/models", data=data, headers=headers, follow_redirects=False).status_code == 303
    # An API call made with the cookie needs the header too; one with a bearer token does not.
    refused = cookie_client.post("/api/v1/models", json={"starter": "dense"}, headers=same_site)
    assert refused.status_code == 403
    allowed = cookie_client.post("/api/v1/models", json={"starter": "dense"},
                                 headers={**same_site, "X-CSRF-Token": token})
    assert allowed.status_code == 201


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
