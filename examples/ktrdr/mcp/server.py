"""Stand-in for KTRDR's MCP server directory (copied into the backend image only).

It talks to the API over HTTP and has no dependency outside the standard library.
"""

import json
import os
import urllib.request

API_URL = os.environ.get("KTRDR_API_URL", "http://localhost:8000/api/v1")


def health() -> dict:
    with urllib.request.urlopen(f"{API_URL}/health", timeout=5) as response:
        return json.load(response)


if __name__ == "__main__":
    print(json.dumps(health()))
