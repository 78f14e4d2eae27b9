"""Every method name a run can have, and its kind: ``deep`` (:mod:`jhash.methods`, trained by
:mod:`jhash.train`), ``shallow`` (:mod:`jhash.shallow`, fitted by :mod:`jhash.shallow.runner`) or
``online`` (:mod:`jhash.online`, run stage by stage by :mod:`jhash.online.runner`).

:func:`jhash.run.train` picks the runner by the kind; all three write the same work dir.
"""
from __future__ import annotations

from jhash.online.settings import NAMES as ONLINE
from jhash.shallow.settings import method_names as shallow_names

__all__ = ["ONLINE", "kind", "names"]


def names() -> dict[str, list[str]]:
    """``{"deep": [...], "shallow": [...], "online": [...]}``."""
    from jhash import methods

    return {"deep": methods.available(), "shallow": shallow_names(), "online": list(ONLINE)}


def kind(name: str) -> str:
    """``'deep'``, ``'shallow'`` or ``'online'``; a ``ValueError`` listing every name for an unknown one."""
    if name in shallow_names():
        return "shallow"
    if name in ONLINE:
        return "online"
    known = names()
    if name in known["deep"]:
        return "deep"
    raise ValueError(f"unknown method {name!r}; expected one of " + "; ".join(f"{k}: {', '.join(v)}"
                                                                               for k, v in known.items()))
