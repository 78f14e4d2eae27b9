"""DIHN (Wu, Dai, Liu, Li, Wang, CVPR 2019) with classes arriving in stages.

Stage 0 learns the database codes of the first classes with ADSH; every later stage keeps all
earlier database codes bit-identical and learns the codes of the new classes' items together
with a new query network (ADSH's asymmetric loss and bitwise code step over the whole seen
database, plus DIHN's bit-balance term); retraining from scratch = ADSH on all seen items.
Defaults (gamma 200, mu 50, 2,000 samples, 3 epochs per sample) are the authors';
see jhash/online/dihn.py for what differs. Network and budget: the dataset's shared settings
(``jhash.config.experiment_config``; ``cpu=true`` for the CPU-sized budget), the number of
ADSH outer iterations from ADSH's budget rule (num_epochs passes over the stage's database).

Stages as in experiments/configs/online_mihash.py: 5 classes, then one per stage.

The same config as ``jhash train --config method:dihn:dataset=mnist`` (jhash.config.online_config),
which runs the stages through the one run path (jhash.online.runner).

Run (writes experiments/results/online_mnist.md with online MIHash):
  PYTHONPATH=. python experiments/online_mnist.py --data_dir ../shared/data --seeds 0,1,2
"""

from jhash.config import online_config


def get_config(arg=None):
    return online_config("dihn", arg)
