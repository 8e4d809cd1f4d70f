"""Error analysis over the API and the pages: the test samples behind each confusion-matrix cell,
a regression run's largest errors and one sample, from real tiny runs."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.browser_like import BrowserLikeClient
from tests.web.live_server import add_builtin, attach, model_on, ok, start_run, wait_for_run, workspace_client

pytestmark = pytest.mark.slow  # every test here trains a small model or predicts with one


def browser_run(server: TestClient, starter: str, key: str) -> tuple[TestClient, dict]:
    """A browser (session cookie, so pages and the API both answer it) with a 2-epoch run, ended."""
    client = BrowserLikeClient(server.app)
    client.portal = server.portal
    made = client.post("/models", data={"name": "Net", "starter": starter}, follow_redirects=False)
    model_id = int(made.headers["location"].rstrip("/").rsplit("/", 1)[1])
    dataset = add_builtin(client, key)
    attach(client, model_id, dataset["id"], fit_output=True)
    run = wait_for_run(client, start_run(client, model_id, epochs=2)["id"])
    assert run["state"] == "completed", run["reason"]
    return client, run


@pytest.fixture(scope="module")
def digits(server: TestClient) -> tuple[TestClient, dict]:
    return browser_run(server, "dense", "digits")


def test_every_confusion_cell_lists_exactly_the_samples_it_counts(digits):
    client, run = digits
    matrix = run["evaluation"]["confusion_matrix"]["matrix"]
    seen: set[int] = set()
    for t, row in enumerate(matrix):
        for p, count in enumerate(row):
            cell = ok(client.get(f"/api/v1/runs/{run['id']}/confusion/{t}/{p}"))
            assert cell["count"] == count and len(cell["samples"]) == min(count, 200), (t, p)
            assert cell["left_out"] == max(0, count - 200)
            confidences = [s["confidence"] for s in cell["samples"]]
            assert confidences == sorted(confidences, reverse=True)
            for s in cell["samples"]:
                assert (s["true"], s["predicted"]) == (t, p) and s["index"] not in seen
                seen.add(s["index"])
                top = [c["probability"] for c in s["top3"]]
                assert len(top) == 3 and top == sorted(top, reverse=True) and sum(top) <= 1 + 1e-6
                assert s["top3"][0]["class"] == p and s["top3"][0]["probability"] == s["confidence"]
    assert len(seen) == run["evaluation"]["test_samples"] == sum(map(sum, matrix))


def test_a_sample_agrees_with_its_cell_and_has_a_picture(digits):
    client, run = digits
    wrong = [(t, p) for t, row in enumerate(run["evaluation"]["confusion_matrix"]["matrix"])
             for p, n in enumerate(row) if n and t != p]
    t, p = wrong[0] if wrong else (0, 0)
    listed = ok(client.get(f"/api/v1/runs/{run['id']}/confusion/{t}/{p}"))["samples"][0]
    sample = ok(client.get(f"/api/v1/runs/{run['id']}/samples/{listed['index']}"))
    assert (sample["true"], sample["predicted"], sample["top3"]) == (t, p, listed["top3"])
    assert len(sample["probabilities"]) == 10 and abs(sum(c["probability"] for c in sample["probabilities"]) - 1) < 1e-4
    picture = client.get(sample["image_url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG") and len(picture.content) > 100


def test_bad_questions_are_refused_with_the_allowed_range(digits, server):
    client, run = digits
    base = f"/api/v1/runs/{run['id']}"
    refused = client.get(f"{base}/confusion/10/0")
    assert refused.status_code == 422 and "0 to 9" in refused.json()["detail"]
    assert client.get(f"{base}/confusion/0/-1").status_code == 422
    size = run["evaluation"]["test_samples"]
    missing = client.get(f"{base}/samples/{size}")
    assert missing.status_code == 404 and f"0 to {size - 1}" in missing.json()["detail"]
    assert client.get(f"{base}/samples/{size}/input.png").status_code == 404
    assert client.get(f"{base}/errors").status_code == 422  # a classification run has no regression errors
    stranger = workspace_client(server)
    assert stranger.get(f"{base}/confusion/0/0").status_code == 404
    assert stranger.get(f"{base}/samples/0").status_code == 404


def test_the_run_page_links_cells_to_pages_of_their_samples(digits):
    client, run = digits
    page = client.get(f"/runs/{run['id']}").text
    cells = re.findall(rf'href="/runs/{run["id"]}/confusion/(\d+)/(\d+)"', page)
    matrix = run["evaluation"]["confusion_matrix"]["matrix"]
    assert len(cells) == sum(1 for row in matrix for n in row if n)
    t, p = cells[0]
    cell_page = client.get(f"/runs/{run['id']}/confusion/{t}/{p}")
    assert cell_page.status_code == 200 and "<h1>" in cell_page.text
    links = re.findall(rf'href="/runs/{run["id"]}/samples/(\d+)"', cell_page.text)
    assert len(links) == min(100, matrix[int(t)][int(p)]) and 'alt="Test sample' in cell_page.text
    sample_page = client.get(f"/runs/{run['id']}/samples/{links[0]}")
    assert sample_page.status_code == 200 and 'id="probabilities"' in sample_page.text
    assert sample_page.text.count('class="bar"') == 10


def test_a_regression_run_lists_its_largest_errors(server):
    client, run = browser_run(server, "regression", "diabetes")
    base = f"/api/v1/runs/{run['id']}"
    errors = ok(client.get(f"{base}/errors"))
    listed = [s["error"] for s in errors["samples"]]
    assert len(listed) == min(200, run["evaluation"]["test_samples"]) and listed == sorted(listed, reverse=True)
    worst = errors["samples"][0]
    assert abs(abs(worst["prediction"] - worst["target"]) - worst["error"]) < 1e-6
    sample = ok(client.get(f"{base}/samples/{worst['index']}"))
    assert sample["error"] == worst["error"] and sample["features"][0]["name"]
    assert "image_url" not in sample
    assert client.get(f"{base}/confusion/0/0").status_code == 422
    assert client.get(f"{base}/samples/0/input.png").status_code == 422
    assert 'id="largest-errors-link"' in client.get(f"/runs/{run['id']}").text
    page = client.get(f"/runs/{run['id']}/errors")
    assert page.status_code == 200 and "<h1>Largest errors</h1>" in page.text
    assert page.text.count(f'href="/runs/{run["id"]}/samples/') == len(listed)
    assert '<th scope="col" class="num">age</th>' in page.text
    sample_page = client.get(f"/runs/{run['id']}/samples/{worst['index']}").text
    assert 'id="features"' in sample_page and 'id="error"' in sample_page


def test_a_running_run_has_nothing_to_look_into_yet(server):
    client = workspace_client(server)
    model = model_on(client, "plane", "regression", n_samples=200)
    started = start_run(client, model["id"], epochs=50)
    answer = client.get(f"/api/v1/runs/{started['id']}/errors")
    client.post(f"/api/v1/runs/{started['id']}/stop")
    assert answer.status_code == 409 and "no saved model" in answer.json()["detail"]
