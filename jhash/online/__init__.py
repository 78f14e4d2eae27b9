"""Online and incremental hashing (survey section 5.1): data that arrive over time.

  mihash.py   online MIHash (Cakir et al., ICCV 2017): linear hash functions learned item by
              item from a stream with the mutual-information objective, a reservoir sample of
              the stream, and the trigger update that re-encodes the database only when the
              mutual information on the reservoir improves
  dihn.py     DIHN (Wu et al., CVPR 2019): new classes arrive; the database codes of old items
              stay fixed, the codes of the new items and a new query network are learned
              (ADSH's asymmetric loss and V-step, jhash.methods.adsh, plus DIHN's terms)
  stages.py   classes arriving in stages: the data of each stage and its evaluation

  runner.py   either as a jhash run (``jhash train --config method:online_mihash``): the stages on the
              run's split, the final stage scored by the evaluator, every stage's figures in stages.json
  settings.py their names and hyperparameter defaults (for jhash.config and jhash.registry)

Both are driven stage by stage (``run_stages(config, stage_data)``); see
experiments/online_mnist.py and experiments/configs/online_mihash.py, dihn.py.
"""
from jhash.online.stages import StageData, class_stages, load_stage_data, stage_map

__all__ = ["StageData", "class_stages", "load_stage_data", "stage_map"]
