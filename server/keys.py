"""The key that signs staff console sessions and CSRF tokens, kept out of the database.

A copy of the database (a backup, a disk image, a read-only leak) must not let anyone sign an
admin's session cookie, so the key lives in the ``secret_key`` setting (``GRIDBOOK_SECRET_KEY``)
or in a file beside the database, ``<db>.key`` by default, made with mode 0600 on first start.
It is read when the app is created (``create_app``), never at import time.

Pull cursors are still signed with the database's own ``secret`` (``sync/cursor.py``): a cursor
only says where in the caller's own feed a pull resumes, every pull is authorised by its token
and scope, and a backup restored later must keep accepting the cursors it issued up to its epoch.
"""

from __future__ import annotations

import os
import secrets
import stat

from .settings import SettingError, Settings

MIN_KEY = 32


class KeyProblem(SettingError):
    """The key cannot be used as configured; the message says what to do."""


def key_file(settings: Settings) -> str:
    return settings.secret_key_file or settings.local_base + ".key"


def console_key(settings: Settings) -> bytes:
    """The key from the setting, else from its file, which is created (0600) if it does not exist."""
    if settings.secret_key:
        if len(settings.secret_key.strip()) < MIN_KEY:
            raise KeyProblem(f"secret_key (GRIDBOOK_SECRET_KEY) must be at least {MIN_KEY} characters; "
                             "make one with: python3 -c 'import secrets; print(secrets.token_hex(32))'")
        return settings.secret_key.strip().encode()
    path = key_file(settings)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return _read(path)


def _read(path: str) -> bytes:
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise KeyProblem(f"the key file {path} is not a regular file")
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProblem(f"the key file {path} may be read by other users; run: chmod 600 {path}")
    with open(path, "rb") as fh:
        key = fh.read().strip()
    if len(key) < MIN_KEY:
        raise KeyProblem(f"the key file {path} holds fewer than {MIN_KEY} characters; delete it and restart "
                         "to make a new one (staff then sign in again)")
    return key
