"""Online MIHash (Cakir, He, Bargal, Sclaroff, ICCV 2017) with classes arriving in stages.

Linear hash functions on the raw pixels (centred, unit length), learned item by item from the
stream with the mutual-information objective against a reservoir of 200 items; the database
is re-encoded only when the trigger's MI gain on the reservoir passes the threshold. The
paper's / authors' defaults are in ``jhash.online.mihash.defaults()``; see that module.

Stages: 5 classes (0-4), then one class per stage (5, 6, ..., 9); the database of a stage
is the protocol's training items of the seen classes (mnist: 500 per class), the queries
its query items of the seen classes (100 per class). Each stage streams ``stream_epochs``
random passes over its new items.

The same config as ``jhash train --config method:online_mihash:dataset=mnist`` (jhash.config.online_config),
which runs the stages through the one run path (jhash.online.runner).

Run (writes experiments/results/online_mnist.md, with DIHN, experiments/configs/dihn.py):
  PYTHONPATH=. python experiments/online_mnist.py --data_dir ../shared/data --seeds 0,1,2
The bundled digits (no files) take the same command with ``--dataset digits --out <file>``;
tests/test_online.py runs both methods on digits in two stages (5 + 5 classes).

Expected on mnist, 32 bits (experiments/results/online_mnist.md): see that table.
"""

from jhash.config import online_config


def get_config(arg=None):
    return online_config("online_mihash", arg)
