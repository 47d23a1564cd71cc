"""Keys for the console tests: an accounts file that is the session's plus an operator of every account, an
operator, a producer and a viewer of `voice`, and a viewer of every account (only their SHA-256 is written)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.conftest import TEST_DIR

TOKENS = {"ops": "console-ops-Qd8Lr2", "ops_voice": "console-opsv-Hn4Kz1", "producer_voice": "console-prod-Wm7Tc5",
          "viewer_voice": "console-viewv-Ab3Jx9", "viewer": "console-view-Ue6Pq0"}
#: the session's accounts file (the worker's), whatever MSGRELAY_ACCOUNTS_FILE says in a test
SESSION_FILE = Path(os.environ["MSGRELAY_ACCOUNTS_FILE"])
ROLES = {"ops": ("operator", '["*"]'), "ops_voice": ("operator", '["voice"]'),
         "producer_voice": ("producer", '["voice"]'), "viewer_voice": ("viewer", '["voice"]'),
         "viewer": ("viewer", '["*"]')}


def keyed_accounts_file(name: str = "accounts-console.toml", keys: dict[str, str] | None = None) -> Path:
    """The session's accounts file plus the console's keys (`keys`: name → token, default TOKENS)."""
    keys = TOKENS if keys is None else keys
    path = TEST_DIR / name
    text = SESSION_FILE.read_text(encoding="utf-8")
    for key, token in keys.items():
        role, accounts = ROLES[key]
        text += (f'\n[api_keys.{key}]\ntoken_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n'
                 f'role = "{role}"\naccounts = {accounts}\n')
    path.write_text(text, encoding="utf-8")
    return path
