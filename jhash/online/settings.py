"""The online methods' names and hyperparameter defaults, importable without their stage loops (for
``jhash.config``, which builds their configs, and :mod:`jhash.registry`)."""
from __future__ import annotations

NAMES = ("online_mihash", "dihn")  # the run names (deep MIHash is jhash.methods.mihash)

__all__ = ["NAMES", "defaults"]


def defaults(name: str) -> dict:
    """The hyperparameters of ``name`` (``config.<name>``): online MIHash's (:func:`jhash.online.mihash.defaults`)
    or DIHN's (ADSH's without its database option, plus the balance weight ``mu``)."""
    if name == "online_mihash":
        from jhash.online.mihash import defaults as mihash_defaults

        return mihash_defaults()
    if name == "dihn":
        from jhash.methods import adsh

        # DIHN's database is its own (the stage's items): ADSH's whole-database option does not apply
        return {**{k: v for k, v in adsh.defaults().items() if k != "database"}, "mu": 50.0}
    raise ValueError(f"unknown online method {name!r}; known: {', '.join(NAMES)}")
