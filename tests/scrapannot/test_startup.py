"""What a web process loads at start: torch (about a second) and statsmodels (pandas) wait for
the first request that needs them, so gunicorn workers start fast."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_starting_the_app_and_its_urls_imports_no_torch_and_no_statsmodels():
    probe = (
        "import sys, django; django.setup(); import scrapannot.urls; "
        "print(sorted(m for m in ('torch', 'timm', 'statsmodels', 'pandas') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "scrapannot.settings", "SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
