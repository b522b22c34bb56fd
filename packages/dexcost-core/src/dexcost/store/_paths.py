"""Where the local store lives when nobody says: the user's data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_BUFFER_PATH = "DEXCOST_BUFFER_PATH"
_APP = "dexcost"
_FILE = "dexcost.db"


def default_buffer_path() -> Path:
    """Return the default path of the local SQLite store.

    ``$DEXCOST_BUFFER_PATH`` when set; otherwise ``dexcost/dexcost.db`` in the user data
    directory: ``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux and other POSIX
    systems, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows.
    """
    env = os.environ.get(ENV_BUFFER_PATH, "").strip()
    if env:
        return Path(env).expanduser()
    return _user_data_dir() / _APP / _FILE


def _user_data_dir() -> Path:
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA", "").strip()
        return Path(local) if local else Path.home() / "AppData" / "Local"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    # The XDG spec says relative paths are invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".local" / "share"
