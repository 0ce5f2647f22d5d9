"""Store URLs as messages and pages show them: as given, but for their passwords."""

from __future__ import annotations

from urllib.parse import urlsplit

#: URL parameters that carry a password (libpq reads ``?password=`` too).
SECRET_PARAMETERS = frozenset(("password", "pass", "passwd", "pwd"))


def shown_url(url: str) -> str:
    """``url`` as given, with its passwords as ``***``: the user part's
    (``user:***@host``) and a password parameter's (``?password=***``). Errors get
    logged and report pages passed on; nothing else is changed (``sqlite:///x.db``
    keeps its three slashes)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # a malformed netloc (an unclosed "[", a port that is no number)
        return _masked_roughly(url)
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = [pair.partition("=") for pair in query.split("&")]
        query = "&".join(
            f"{name}{eq}{'***' if eq and name.lower() in SECRET_PARAMETERS else value}"
            for name, eq, value in pairs
        )
    if netloc == parts.netloc and query == parts.query:
        return url
    after_scheme = url[len(parts.scheme) + 1 :] if parts.scheme else url
    start = f"{parts.scheme}:" if parts.scheme else ""
    if after_scheme.startswith("//"):
        start += "//"
    return (
        f"{start}{netloc}{parts.path}{'?' if parts.query else ''}{query}"
        f"{'#' if parts.fragment else ''}{parts.fragment}"
    )


def _masked_roughly(url: str) -> str:
    """A URL ``urlsplit`` cannot read, with whatever follows the first ``:`` of its user
    part (``user:password@``) masked: its netloc is what lies between ``//`` and the
    next ``/``, ``?`` or ``#``, its user part what precedes the netloc's last ``@``."""
    head, slashes, rest = url.partition("//")
    if not slashes:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    user, at, host = rest[:end].rpartition("@")
    if not at or ":" not in user:
        return url
    return f"{head}//{user.partition(':')[0]}:***@{host}{rest[end:]}"
