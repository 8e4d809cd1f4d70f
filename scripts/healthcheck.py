"""Is LayerLab answering? Exit 0 when healthy, 1 with the reason otherwise.

    python scripts/healthcheck.py [BASE_URL]    (default http://127.0.0.1:$LAYERLAB_PORT)

The Docker image's HEALTHCHECK and scripts/check-image-install.sh both run this. It asks
GET /healthz for {"status": "ok"}; a server without /healthz yet (404) is asked for
GET /api/v1/starters instead. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return json.load(response)


def check(base_url: str) -> tuple[bool, str]:
    """(healthy, what was asked and what is wrong if anything)."""
    base_url = base_url.rstrip("/")
    try:
        try:
            answer = get_json(base_url + "/healthz")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                return False, f"GET /healthz answered {exc.code}"
            starters = get_json(base_url + "/api/v1/starters")  # no /healthz on this server yet
            if not isinstance(starters, list) or not starters:
                return False, f"GET /api/v1/starters answered {str(starters)[:200]}, not a list of starters"
            return True, "GET /api/v1/starters answered (the server has no /healthz yet)"
        if not isinstance(answer, dict) or answer.get("status") != "ok":
            return False, f'GET /healthz answered {str(answer)[:200]}, not {{"status": "ok"}}'
        return True, 'GET /healthz answered {"status": "ok"}'
    except urllib.error.HTTPError as exc:
        return False, f"{exc.url} answered {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, not JSON
        return False, f"{base_url}: {getattr(exc, 'reason', None) or exc}"


def main(argv: list[str]) -> int:
    base_url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:{os.environ.get('LAYERLAB_PORT') or 8000}"
    healthy, message = check(base_url)
    print(f"{'healthy' if healthy else 'unhealthy'}: {message}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
