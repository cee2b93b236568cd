"""The one moto release ``moto_server.py``'s patches were written against: they replace internals of its SQS
(methods, a lock, how attributes are computed), which any other release may have changed."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

PATCHED_MOTO = "5.2.5"


def problem(installed_version: Callable[[str], str] = version) -> str | None:
    """Why the patches must not be applied here, in one line; None when the installed moto is the patched one."""
    try:
        installed = installed_version("moto")
    except PackageNotFoundError:
        return "moto is not installed: run `make install`"
    if installed != PATCHED_MOTO:
        return (f"infra/local/moto_server.py patches moto {PATCHED_MOTO}'s SQS internals and moto {installed} is "
                f"installed: run `make install` (the lock pins {PATCHED_MOTO}), or check each patch against "
                f"{installed} and update PATCHED_MOTO")
    return None
