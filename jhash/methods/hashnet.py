"""HashNet: Cao, Long, Wang, Yu, "HashNet: deep learning to hash by continuation", ICCV 2017.

The codes are tanh(beta_t z), with beta_t raised on a schedule so the smooth problem
approaches the discrete one (:func:`jhash.discretize.continuation`, sec. 3.3), trained by
weighted maximum likelihood of the pairwise labels
(:func:`jhash.losses.weighted_pairwise_likelihood`, eq. 5) with theta = (10 / q) <h_i, h_j>.
No quantization term.

Where we follow the authors' code (thuml/HashNet, pytorch/src/{loss,network,train}.py):
beta_t = (1 + 0.005 t)^0.5 raised every 200 iterations (beta is computed from the traced
step, so the compiled step sees every change); theta's scale 10 / q; the pairs are the cross
pairs between two independently drawn halves (here: the first and second half of the
batch, which is a uniformly random draw); codes are sign(z) (the sign of tanh(beta z)).
The weight of similar pairs is the paper's |S| / |S_1| (and |S| / |S_0| for dissimilar
ones; ``positive_weight='balanced'``); the authors' code uses a fixed weight c per dataset
(1 for COCO, 5 for NUS-WIDE), set with ``positive_weight=c``.
Where we differ: the authors fine-tune AlexNet / ResNet-50 with SGD; our configs train the
shared small CNN with Adam.
"""
from __future__ import annotations

from jhash.discretize import continuation, continuation_scale
from jhash.losses import pairwise_similarity, weighted_pairwise_likelihood
from jhash.methods.base import Method, build_model, hyperparameters


def defaults() -> dict:
    return {"init_scale": 1.0, "gamma": 0.005, "power": 0.5, "step_size": 200, "alpha": 0.0,
            "positive_weight": "balanced"}


def build(config, *, train_labels, schedule) -> Method:
    hp = hyperparameters(config, "hashnet", defaults())
    if config.batch_size < 2:
        raise ValueError("hashnet pairs the two halves of a batch: config.batch_size must be >= 2")
    beta_schedule = {k: hp[k] for k in ("init_scale", "gamma", "power", "step_size")}
    relax = continuation(**beta_schedule)
    scale = float(hp["alpha"]) or 10.0 / config.bits  # alpha = 0: the authors' 10 / q

    def loss(u, batch, state, *, step, key):
        h = relax(u, step=step)
        half = h.shape[0] // 2
        s = pairwise_similarity(batch["y"][:half], batch["y"][half:2 * half])
        value = weighted_pairwise_likelihood(h[:half], h[half:2 * half], s, scale=scale,
                                             positive_weight=hp["positive_weight"])
        return value, {"beta": continuation_scale(step, **beta_schedule)}

    return Method(name="hashnet", model=build_model(config), loss=loss)
