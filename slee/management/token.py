"""
The admin token: a random secret in C{<var>/admin.token}, mode 0600.

The container calls L{ensure_token} at start-up (it creates the file the
first time and reuses it afterwards); the C{slee} CLI calls L{read_token}.
Whoever can read the file can manage the container, so the file is created
atomically with mode 0600 and a token file that group or others can read
is replaced by a fresh one.

This module uses the standard library only (the CLI imports it).
"""

import os
import re
import secrets
import stat
import warnings
from pathlib import Path

TOKEN_FILE = "admin.token"

# RFC 6750 b64token: what may follow "Bearer " in an Authorization header.
_TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/-]+=*")


class TokenFileWarning(UserWarning):
    """The token file had to be replaced (bad mode or content)."""


def token_path(var_dir):
    """
    @return: the L{Path} of the token file in C{var_dir}.
    """
    return Path(var_dir) / TOKEN_FILE


def _parse(text, path):
    token = text.strip()
    if not token:
        raise ValueError(f"{path} is empty")
    if not _TOKEN_RE.fullmatch(token):
        raise ValueError(f"{path} does not hold a valid token")
    return token


def read_token(var_dir):
    """
    Read the admin token of the container whose state is in C{var_dir}.

    @raise FileNotFoundError: there is no token file.
    @raise OSError: it cannot be read (C{PermissionError}...).
    @raise ValueError: it is empty or does not hold a valid token.
    """
    path = token_path(var_dir)
    with open(path, encoding="ascii", errors="replace") as f:
        return _parse(f.read(4096), path)


def _write_exclusive(path, token):
    """
    Create C{path} holding C{token}, mode 0600; fail if it exists.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _replace(path, token):
    """
    Atomically replace C{path} with a new 0600 file holding C{token}.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_exclusive(tmp, token)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def ensure_token(var_dir):
    """
    Return the admin token of the container whose state is in C{var_dir},
    creating C{var_dir} (mode 0700) and the token file (mode 0600) if
    needed.

    An existing token file is reused, unless group or others may read it
    or it does not hold a valid token: then it is replaced by a new token
    (and a L{TokenFileWarning} says so, which twistd logs).

    @raise OSError: the directory or file cannot be created or read.
    @raise ValueError: the token path exists but is not a regular file.
    """
    var_dir = Path(var_dir)
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = token_path(var_dir)
    token = secrets.token_urlsafe(32)
    try:
        _write_exclusive(path, token)
        return token
    except FileExistsError:
        pass

    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} exists and is not a regular file")
    if st.st_mode & 0o077:
        _replace(path, token)
        warnings.warn(
            f"{path} was readable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}): replaced it with a new "
            f"token, mode 0600",
            TokenFileWarning,
            stacklevel=2,
        )
        return token
    try:
        return read_token(var_dir)
    except ValueError as e:
        _replace(path, token)
        warnings.warn(
            f"{e}: replaced it with a new token", TokenFileWarning, stacklevel=2
        )
        return token
