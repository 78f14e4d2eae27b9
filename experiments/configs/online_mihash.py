"""Online MIHash (Cakir, He, Bargal, Sclaroff, ICCV 2017) with classes arriving in stages.

Linear hash functions on the raw pixels (centred, unit length), learned item by item from the
stream with the mutual-information objective against a reservoir of 200 items; the database
is re-encoded only when the trigger's MI gain on the reservoir passes the threshold. The
paper's / authors' defaults are in ``jhash.online.mihash.defaults()``; see that module.

Stages: 5 classes (0-4), then one class per stage (5, 6, ..., 9); the database of a stage
is the protocol's training items of the seen classes (mnist: 500 per class), the queries
its query items of the seen classes (100 per class). Each stage streams ``stream_epochs``
random passes over its new items.

Run (writes experiments/results/online_mnist.md, with DIHN, experiments/configs/dihn.py):
  PYTHONPATH=. python experiments/online_mnist.py --data_dir ../shared/data --seeds 0,1,2
The bundled digits (no files) take the same command with ``--dataset digits --out <file>``;
tests/test_online.py runs both methods on digits in two stages (5 + 5 classes).

Expected on mnist, 32 bits (experiments/results/online_mnist.md): see that table.
"""
import ml_collections

from jhash.config import parse_arg
from jhash.online import mihash


def get_config(arg=None):
    args = parse_arg(arg, dataset="mnist", bits=32, seed=0, cpu=False)
    c = ml_collections.ConfigDict()
    c.method = "online_mihash"
    c.dataset, c.data_dir, c.protocol = args.dataset, "", ""
    c.split_seed = args.seed
    c.seed = args.seed
    c.bits = args.bits
    c.stages = ml_collections.ConfigDict({"first": 5, "per_stage": 1})
    c.online_mihash = mihash.defaults()
    c.online_mihash.stream_epochs = 3  # 3 passes over each stage's new items (cheap: linear functions)
    return c
