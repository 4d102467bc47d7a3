"""A store URL as messages show it: without its password, however it is written.

Read from the text the user gave, not from SQLAlchemy's parse of it, so that a URL
SQLAlchemy cannot parse, or parses other than meant, is shown without its password too.
"""

from __future__ import annotations

import re

from orchestrator.errors import ConfigError

HIDDEN = "***"
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&#]*", re.IGNORECASE)


def _parts(url: str) -> tuple[str, str, int]:
    """``url``'s ``scheme://``, the text after it, and where in that text its user name
    and password end (the last ``@``; -1 when it has none)."""
    scheme, sep, rest = url.partition("://")
    # sqlite:///PATH and postgresql:///DB?host=... name no user: an '@' there is the path's
    at = rest.rfind("@") if sep and not rest.startswith("/") else -1
    return scheme + sep, rest, at


def hide_password(url: str) -> str:
    """``url`` with its password, and a ``password=`` or ``sslpassword=`` in its query,
    replaced by ``***``; the rest as it is written.

    The password runs from the first ``:`` of the user part to the last ``@`` before
    the host, so that one holding an unescaped ``@`` is hidden whole. A plain path and
    ``memory://`` come back as they are.
    """
    head, rest, at = _parts(url)
    if not head:
        return url
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{HIDDEN}{rest[at:]}"
    return head + _QUERY_PASSWORD.sub(rf"\g<1>{HIDDEN}", rest)


def require_one_at(url: str) -> None:
    """Refuse a database server's URL whose user part holds an unescaped ``@``.

    SQLAlchemy ends the password at its first ``@`` and takes the rest for the host, so
    ``user:p@ss@HOST`` would connect to the host ``ss@HOST`` and name it, part of the
    password, in the error. SQLite URLs are not checked: their path may hold ``@``.

    :raises ConfigError: naming the URL (password hidden) and how to write the ``@``.
    """
    head, rest, at = _parts(url)
    if at < 0 or head.lower().startswith("sqlite") or rest.count("@") < 2:
        return
    raise ConfigError(
        f"trace store URL {hide_password(url)} is ambiguous: it holds {rest.count('@')} "
        "'@' signs, so where the password ends and the host begins is unclear; write an "
        "'@' that is part of the user name, password or database name as %40 "
        "(user:p%40ss@HOST)"
    )
