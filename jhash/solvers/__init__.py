"""Discrete sub-problems of the two-step and alternating hashing methods, as static-shape lax loops.

Every solver is a pure function (documented shapes, ``ValueError`` on bad shapes) built from
``lax.fori_loop`` / ``lax.while_loop`` with a named body and an explicit carry, so it runs
under ``jit`` and ``vmap`` inside the same compiled graph as a network step:

* :mod:`jhash.solvers.dcc`: SDH's discrete cyclic coordinate descent (B-step) and the
  ridge-regression W- / F-steps (Shen et al., CVPR 2015; also DSDH's B-step).
* :mod:`jhash.solvers.bqp`: bitwise binary quadratic problems for ||q S - B B^T||^2 and its
  column-sampled form (KSH, TSH, COSDISH, DDSH): 1-flip local search with restarts and the
  COSDISH / DDSH balanced-partition heuristic.
* :mod:`jhash.solvers.adsh`: ADSH's closed-form bitwise update of the database codes V
  (Jiang & Li, AAAI 2018), shardable along the database axis.
"""
from jhash.solvers.adsh import adsh_objective, adsh_update_v
from jhash.solvers.bqp import (bqp_balanced_partition, bqp_bitwise, bqp_local_search, bqp_minimize, bqp_value,
                               cosdish_gamma_update, pairwise_objective)
from jhash.solvers.dcc import ridge_regression, sdh_dcc, sdh_objective

__all__ = [
    "adsh_objective", "adsh_update_v",
    "bqp_balanced_partition", "bqp_bitwise", "bqp_local_search", "bqp_minimize", "bqp_value",
    "cosdish_gamma_update", "pairwise_objective",
    "ridge_regression", "sdh_dcc", "sdh_objective",
]
