"""DIHN (Wu, Dai, Liu, Li, Wang, CVPR 2019) with classes arriving in stages.

Stage 0 learns the database codes of the first classes with ADSH; every later stage keeps all
earlier database codes bit-identical and learns the codes of the new classes' items together
with a new query network (ADSH's asymmetric loss and bitwise code step over the whole seen
database, plus DIHN's bit-balance term); retraining from scratch = ADSH on all seen items.
Defaults (gamma 200, mu 50, 2,000 samples, 3 epochs per sample) are the authors';
see jhash/online/dihn.py for what differs. Network and budget: the dataset's shared settings
(``experiments/configs/common.py``; ``cpu=true`` for the CPU-sized budget), the number of
ADSH outer iterations from ADSH's budget rule (num_epochs passes over the stage's database).

Stages as in experiments/configs/online_mihash.py: 5 classes, then one per stage.

Run (writes experiments/results/online_mnist.md with online MIHash):
  PYTHONPATH=. python experiments/online_mnist.py --data_dir ../shared/data --seeds 0,1,2
"""
import ml_collections

from jhash.config import parse_arg
from jhash.configs.common import experiment_config
from jhash.online import dihn


def get_config(arg=None):
    args = parse_arg(arg, dataset="mnist", bits=32, seed=0, cpu=False)
    c = experiment_config("dihn", dataset=args.dataset, bits=args.bits, cpu=args.cpu)
    c.split_seed = args.seed
    c.seed = args.seed
    c.stages = ml_collections.ConfigDict({"first": 5, "per_stage": 1})
    c.dihn = dihn.defaults()
    return c
