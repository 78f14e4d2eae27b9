"""MIHash: Cakir, He, Bargal, Sclaroff, "MIHash: online hashing with mutual information", ICCV 2017
(and "Hashing with mutual information", TPAMI 2019, for the batch / deep form).

The codes should make the Hamming distance to a query informative about whether an item is
its neighbour: the loss is minus the mutual information between the relaxed distance and
the neighbour indicator, estimated per query by soft histogram binning
(:func:`jhash.losses.mutual_information`), averaged over the batch's queries; relaxed codes
phi = 2 sigmoid(u) - 1.

Where we follow the authors' deep code (fcakir/deep-mihash, mi_forward.m, get_opts.m):
q / 2 bins (q / 2 + 1 centres), sigmoid steepness 1, base-2 entropies, every item of the
batch a query against the others, the mean over queries; codes are sign(u). Where we differ:
the authors fine-tune VGG-F with SGD; our configs train the shared small CNN with Adam.
The online form (reservoir, trigger update) belongs to the online-hashing issue.

Devices: the one deep method whose training is not bit-identical on 1 device and on several
(tests/test_scaleout.py asserts its tolerance: logged metrics within a relative 1e-4 and at
most 1% of code bits after 14 steps; 2, 4 and 8 devices agree with each other). The trainer
computes the loss on the whole batch on every device in either case, but XLA compiles a
multi-device program through its SPMD partitioner and then fuses the soft histogram's
gradient arithmetic differently than in the 1-device program, which changes its rounding
(about 1e-10 in d loss / d u at the first step); no reduction order is involved.
"""
from __future__ import annotations

from jhash.discretize import sigmoid
from jhash.losses import mutual_information_loss
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"steepness": 1.0, "num_bins": 0}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "mihash", defaults())
    num_bins = int(hp["num_bins"]) or max(1, config.bits // 2)
    relax = sigmoid(hp["steepness"])

    def loss(u, batch, state, *, step, key):
        value = mutual_information_loss(relax(u), batch["y"], num_bins=num_bins)
        return value, {"mutual_information": -value}

    return Method(name="mihash", model=build_model(config), loss=loss)
