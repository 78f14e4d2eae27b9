"""The config files, installed as the package ``jhash.configs`` (``jhash/configs`` is a link to this folder), so
that ``jhash train`` and ``--config method:NAME`` find them without a checkout. Each ``NAME.py`` defines
``get_config(arg=None)``; ``common.py`` holds what the deep methods' files share."""
