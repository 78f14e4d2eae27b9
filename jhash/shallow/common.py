"""Pieces shared by the non-deep hashing methods: input checks, the fitted `Hasher`, PCA,
k-means, RBF anchor features, anchor-graph features, a ridge hash-function fitter and
triplet sampling.

Everything numerical is ``jax.numpy`` under ``jax.jit`` (CPU, GPU or TPU); iterative
parts are static-shape ``lax.fori_loop`` programs. Host-side work is limited to checks
and to choices whose shape depends on the data (e.g. SH's mode table).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jhash.codes import sign

__all__ = [
    "Hasher", "check_features", "check_positive", "check_bits", "check_labels", "similarity_from_labels",
    "sqdist", "pca", "kmeans", "kmeans_objective", "choose_anchors", "rbf_bandwidth",
    "rbf_features", "anchor_graph", "fit_ridge", "linear_project", "kernel_project",
    "sample_triplets", "random_orthogonal", "prepare_fit", "hasher_arrays", "hasher_from_arrays", "jit",
    "COMPILER_OPTIONS",
]

_HI = jax.lax.Precision.HIGHEST

# XLA:CPU options for the compiled programs of the shallow fits and of ``Hasher.encode`` (issue 18: in a
# fresh process the JIT compile is most of an SDH or ITQ fit). With XLA's older LLVM fusion emitters
# and one codegen module (instead of the MLIR emitters and a split into modules compiled in
# parallel) SDH's solver compiles in 0.5-0.6 s instead of 1.9-2.4 s and a whole SDH fit's programs in
# 2.2-2.6 s instead of 4.0-5.2 s (2 cores, low load; ITQ and AGH gain less: experiments/results/speed_floor.md). The fits' codes stay
# byte-identical (tests/test_shallow_compile.py); SDH's objective history, a diagnostic sum, may
# differ in its last bit. The options are given only when JAX's default backend is the CPU (GPU and
# TPU compiles are left as they were; they were not measured).
COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False, "xla_cpu_parallel_codegen_split_count": 1}


def jit(fun=None, **kwargs):
    """``jax.jit`` with :data:`COMPILER_OPTIONS` on the CPU backend; ``@jit`` or ``@jit(static_argnames=...)``.
    JAX takes compiler options only on a top-level program, so a call whose arguments hold a tracer
    (inside another ``jit``, ``vmap`` or ``grad``) goes to a plain ``jax.jit`` of ``fun``, which compiles
    as part of its caller's program; so does every call when the default backend is not the CPU."""
    if fun is None:
        return functools.partial(jit, **kwargs)
    top, nested = jax.jit(fun, compiler_options=COMPILER_OPTIONS, **kwargs), jax.jit(fun, **kwargs)

    @functools.wraps(fun)
    def call(*args, **kw):
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves((args, kw)))
        return (top if not traced and jax.default_backend() == "cpu" else nested)(*args, **kw)

    call.lower = top.lower
    return call


# ---------------------------------------------------------------- input checks
def check_features(x, name: str = "features", dim: int | None = None) -> jnp.ndarray:
    """``x`` as a float32 ``(n, d)`` array; ``ValueError`` naming ``name`` if it is not
    2-D, empty, non-numeric, of the wrong width, or holds NaN / inf (checked when concrete)."""
    shape = np.shape(x)
    if len(shape) != 2:
        raise ValueError(f"{name} must be a 2-D array (n, d), got shape {tuple(shape)}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(shape)}")
    dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {dtype}")
    if dim is not None and shape[1] != dim:
        raise ValueError(f"{name} has {shape[1]} columns but the hash function was fitted on {dim}")
    if not isinstance(x, jax.core.Tracer):
        a = np.asarray(x)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            bad = int(np.count_nonzero(~np.isfinite(a).all(axis=1)))
            raise ValueError(f"{name} contains NaN or inf (in {bad} of {shape[0]} rows)")
    return jnp.asarray(x, jnp.float32)


def check_positive(value, name: str, limit: int | None = None, what: str = "") -> int:
    """``value`` as a positive int (at most ``limit`` when given); ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if limit is not None and value > limit:
        raise ValueError(f"{name}={value} is more than {what or 'allowed'} ({limit})")
    return int(value)


def check_bits(bits, limit: int | None = None, what: str = "") -> int:
    """``bits`` as a positive int (at most ``limit`` when given); ``ValueError`` otherwise."""
    return check_positive(bits, "bits", limit, what)


def check_labels(labels, n: int, name: str = "labels") -> jnp.ndarray:
    """Class ids ``(n,)`` or multi-hot ``(n, c)`` labels, checked against ``n`` items."""
    if labels is None:
        raise ValueError(f"{name} are required by this supervised method")
    a = np.asarray(labels)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be class ids (n,) or multi-hot (n, c), got shape {a.shape}")
    if a.shape[0] != n:
        raise ValueError(f"{name} has {a.shape[0]} rows but features has {n}")
    if not (np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_):
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold integers (class ids or 0/1), got dtype {a.dtype}")
    return jnp.asarray(a.astype(np.int32))


def similarity_from_labels(la, lb):
    """Boolean ``(na, nb)``: items are similar when they share a class (or any label)."""
    if la.ndim == 1:
        return la[:, None] == lb[None, :]
    return (la.astype(jnp.float32) @ lb.astype(jnp.float32).T) > 0


# ---------------------------------------------------------------- the fitted model
@functools.lru_cache(maxsize=None)
def _jitted_by(func, keywords):
    project = functools.partial(func, **dict(keywords))
    return jit(lambda params, x: sign(project(params, x)))


def _jitted(project):
    """One jitted encoder per projection function and static keywords (a new ``partial`` with
    the same keywords, as each fit of AGH or DGH makes, reuses the compiled encoder)."""
    if isinstance(project, functools.partial) and not project.args:
        return _jitted_by(project.func, tuple(sorted(project.keywords.items())))
    return _jitted_by(project, ())


@dataclasses.dataclass(frozen=True, eq=False)
class Hasher:
    """A fitted hash function: ``encode(x) = sign(project(params, x))`` as +-1 int8.

    Every method's ``fit`` returns one. ``project`` is a pure module-level function (or a
    ``functools.partial`` of one), ``params`` its fitted arrays and ``info`` the training
    diagnostics (e.g. the objective per iteration).
    """

    method: str
    bits: int
    dim: int
    project: Callable[[Mapping[str, jax.Array], jax.Array], jax.Array]
    params: Mapping[str, jax.Array]
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def apply(self, x) -> jax.Array:
        """The codes as a traceable function of ``x`` (for use inside ``jit``)."""
        return sign(self.project(self.params, x))

    def encode(self, features, batch_size: int = 4096) -> np.ndarray:
        """+-1 int8 codes ``(n, bits)`` of ``features`` (encoded in fixed-size batches)."""
        if isinstance(features, jax.core.Tracer):
            check_features(features, "features", self.dim)
            return self.apply(features)
        x = np.asarray(check_features(features, "features", self.dim))
        fn = _jitted(self.project)
        n = x.shape[0]
        bs = min(batch_size, n)
        out = []
        for s in range(0, n, bs):
            xb = x[s:s + bs]
            pad = bs - len(xb)
            if pad:
                xb = np.concatenate([xb, np.zeros((pad, x.shape[1]), x.dtype)])
            out.append(np.asarray(fn(self.params, xb))[: bs - pad])
        return np.concatenate(out)


def hasher_arrays(hasher: Hasher) -> dict:
    """A fitted hash function as named arrays (for an ``.npz``): ``params/<name>`` for each parameter and
    ``spec``, the JSON of its method, bits, input width and projection (``module:name`` of the pure
    module-level function and the keywords of its ``functools.partial``). :func:`hasher_from_arrays`
    gives it back; ``info`` (training diagnostics) is not kept."""
    project, keywords = hasher.project, {}
    if isinstance(project, functools.partial):
        if project.args:
            raise ValueError(f"{hasher.method}: a projection with positional partial arguments cannot be saved")
        project, keywords = project.func, dict(project.keywords)
    spec = {"method": hasher.method, "bits": int(hasher.bits), "dim": int(hasher.dim),
            "project": f"{project.__module__}:{project.__qualname__}", "keywords": keywords}
    out = {"spec": np.str_(json.dumps(spec, sort_keys=True))}
    for name, value in hasher.params.items():
        if isinstance(value, Mapping):
            raise ValueError(f"{hasher.method}: nested parameter {name!r} cannot be saved")
        out[f"params/{name}"] = np.asarray(value)
    return out


def hasher_from_arrays(arrays) -> Hasher:
    """The :class:`Hasher` that :func:`hasher_arrays` saved (``arrays``: a mapping, e.g. an open ``np.load``)."""
    spec = json.loads(str(arrays["spec"]))
    module, _, name = spec["project"].partition(":")
    if not module.startswith("jhash."):
        raise ValueError(f"a saved hash function must project with a jhash function, got {spec['project']!r}")
    project = getattr(importlib.import_module(module), name)
    if spec["keywords"]:
        project = functools.partial(project, **spec["keywords"])
    params = {k[len("params/"):]: jnp.asarray(arrays[k]) for k in arrays if k.startswith("params/")}
    return Hasher(spec["method"], spec["bits"], spec["dim"], project, params)


# ---------------------------------------------------------------- linear algebra
def sqdist(a, b):
    """Squared Euclidean distances ``(na, nb)`` (clipped at 0)."""
    d = (jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :]
         - 2.0 * jnp.matmul(a, b.T, precision=_HI))
    return jnp.maximum(d, 0.0)


@jit(static_argnames=("k",))
def pca(x, k: int):
    """Top-``k`` principal directions of ``x`` ``(n, d)``.

    Returns ``(mean (d,), components (d, k), eigenvalues (k,))``: eigenvectors of the
    covariance ``(x - mean)^T (x - mean) / n``, in decreasing order of eigenvalue.
    """
    mean = jnp.mean(x, 0)
    xc = x - mean
    cov = jnp.matmul(xc.T, xc, precision=_HI) / x.shape[0]
    val, vec = jnp.linalg.eigh(cov)
    order = jnp.argsort(-val)[:k]
    return mean, vec[:, order], val[order]


@jit(static_argnames=("k",))
def random_orthogonal(key, k: int):
    """A random ``(k, k)`` orthogonal matrix (QR of a Gaussian matrix, signs fixed), one compiled program."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (k, k)))
    return q * jnp.where(jnp.diag(r) < 0, -1.0, 1.0)


# ---------------------------------------------------------------- k-means
def kmeans_objective(x, centers):
    """Sum of squared distances of each point to its nearest center, and the assignment."""
    d = sqdist(x, centers)
    a = jnp.argmin(d, 1)
    return jnp.sum(jnp.min(d, 1)), a


@jit(static_argnames=("k", "iters", "init"))
def kmeans(x, key, *, k: int, iters: int = 20, init: str = "kmeans++"):
    """Lloyd's k-means in a ``lax.fori_loop``.

    ``init``: ``"kmeans++"`` (Arthur & Vassilvitskii 2007: each new center drawn with
    probability proportional to the squared distance to the nearest chosen one) or
    ``"random"`` (``k`` distinct points). An empty cluster keeps its previous center.
    Returns ``(centers (k, d), assignment (n,), objective (iters,))`` where
    ``objective[t]`` is the k-means cost at the assignment step of iteration ``t``
    (non-increasing).
    """
    n = x.shape[0]
    k_init, k_draw = jax.random.split(key)
    if init == "random":
        centers = x[jax.random.choice(k_init, n, (k,), replace=False)]
    elif init == "kmeans++":
        first = jax.random.randint(k_init, (), 0, n)
        centers0 = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
        mind0 = jnp.sum((x - x[first]) ** 2, 1)

        def add(i, carry):
            centers, mind = carry
            p = jnp.maximum(mind, 0.0)
            logits = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), -jnp.inf)
            # all points coincide with chosen centers: draw uniformly
            logits = jnp.where(jnp.any(p > 0), logits, 0.0)
            j = jax.random.categorical(jax.random.fold_in(k_draw, i), logits)
            centers = centers.at[i].set(x[j])
            return centers, jnp.minimum(mind, jnp.sum((x - x[j]) ** 2, 1))

        centers, _ = jax.lax.fori_loop(1, k, add, (centers0, mind0))
    else:
        raise ValueError(f"init must be 'kmeans++' or 'random', got {init!r}")

    def lloyd(t, carry):
        centers, hist = carry
        cost, a = kmeans_objective(x, centers)
        sums = jax.ops.segment_sum(x, a, num_segments=k)
        counts = jax.ops.segment_sum(jnp.ones(n, x.dtype), a, num_segments=k)
        new = jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centers)
        return new, hist.at[t].set(cost)

    centers, hist = jax.lax.fori_loop(0, iters, lloyd, (centers, jnp.zeros(iters, x.dtype)))
    _, a = kmeans_objective(x, centers)
    return centers, a, hist


def choose_anchors(x, key, m: int, how: str = "kmeans", iters: int = 10):
    """``m`` anchor points: k-means centers (AGH, DGH) or a random sample of rows (KSH, SGH)."""
    m = int(m)
    if not 1 <= m <= x.shape[0]:
        raise ValueError(f"number of anchors must be in [1, n={x.shape[0]}], got {m}")
    if how == "kmeans":
        return kmeans(x, key, k=m, iters=iters)[0]
    if how == "random":
        return x[jax.random.choice(key, x.shape[0], (m,), replace=False)]
    raise ValueError(f"anchors must be 'kmeans' or 'random', got {how!r}")


# ---------------------------------------------------------------- kernel features
def rbf_bandwidth(x, anchors, rule: str = "mean"):
    """RBF width sigma from the training data.

    ``"mean"``: sigma = mean Euclidean distance from the points to the anchors (SDH/COSDISH
    style); ``"mean_sq"``: sigma^2 = mean squared distance (KSH's and SGH's code, which use
    ``exp(-d^2 / (2 * mean(d^2)))``).
    """
    d2 = sqdist(x, anchors)
    if rule == "mean":
        return jnp.mean(jnp.sqrt(d2))
    if rule == "mean_sq":
        return jnp.sqrt(jnp.mean(d2))
    raise ValueError(f"bandwidth rule must be 'mean' or 'mean_sq', got {rule!r}")


def rbf_features(x, anchors, sigma):
    """``exp(-||x - a_j||^2 / (2 sigma^2))`` for every anchor ``a_j``: ``(n, m)``."""
    return jnp.exp(-sqdist(x, anchors) / (2.0 * sigma ** 2))


def anchor_graph(x, anchors, s: int, sigma=None):
    """AGH's truncated anchor affinities Z ``(n, m)`` (Liu et al., ICML 2011, eq. 2).

    Each row keeps the ``s`` nearest anchors with weights ``exp(-d^2 / sigma^2)`` (the
    authors' code: no factor 2), normalised to sum to 1; other entries are 0.
    ``sigma=None`` estimates it as the authors' code does: the mean distance to the
    ``s``-th nearest anchor. Returns ``(Z, sigma)``.
    """
    d2 = sqdist(x, anchors)
    neg, idx = jax.lax.top_k(-d2, s)
    val = -neg
    if sigma is None:
        sigma = jnp.mean(jnp.sqrt(val[:, s - 1]))
    # subtract the nearest distance before exp (the ratios are unchanged) to avoid underflow
    w = jnp.exp(-(val - val[:, :1]) / sigma ** 2)
    w = w / jnp.sum(w, 1, keepdims=True)
    rows = jnp.arange(x.shape[0])[:, None]
    z = jnp.zeros(d2.shape, x.dtype).at[rows, idx].set(w)
    return z, sigma


# ---------------------------------------------------------------- hash-function fitting
@jit
def fit_ridge(phi, targets, reg):
    """Ridge regression with an unregularised bias: ``min ||phi W + b - targets||^2 + reg ||W||^2``.

    Returns ``(W (m, q), b (q,))``. Used to fit out-of-sample hash functions
    ``sign(phi(x) W + b)`` to given codes (two-step hashing).
    """
    pm, tm = jnp.mean(phi, 0), jnp.mean(targets, 0)
    pc, tc = phi - pm, targets - tm
    g = jnp.matmul(pc.T, pc, precision=_HI) + reg * jnp.eye(phi.shape[1], dtype=phi.dtype)
    w = jnp.linalg.solve(g, jnp.matmul(pc.T, tc, precision=_HI))
    return w, tm - pm @ w


def linear_project(params, x):
    """``(x - mean) @ w + b``: the linear hash functions (LSH, PCAH, ITQ, MLH, ...)."""
    return jnp.matmul(x - params["mean"], params["w"], precision=_HI) + params["b"]


def kernel_project(params, x):
    """``rbf(x, anchors, sigma) @ w + b``: kernel hash functions (SGH, FTH, ...)."""
    return jnp.matmul(rbf_features(x, params["anchors"], params["sigma"]), params["w"],
                      precision=_HI) + params["b"]


# ---------------------------------------------------------------- supervision
@functools.partial(jax.jit, static_argnames=("n_triplets", "chunk"))
def sample_triplets(key, labels, n_triplets: int, chunk: int = 512):
    """``n_triplets`` triplets ``(i, j, k)``: ``j`` similar to ``i`` (shares a label, ``j != i``)
    and ``k`` dissimilar, drawn uniformly. Returns ``(triplets (T, 3) int32, valid (T,) bool)``;
    a triplet whose anchor has no similar or no dissimilar item is marked invalid."""
    n = labels.shape[0]
    n_chunks = -(-n_triplets // chunk)
    ka, kj, kk = jax.random.split(key, 3)
    anchors = jax.random.randint(ka, (n_chunks, chunk), 0, n)

    def draw(args):
        c, a = args
        sim = similarity_from_labels(labels[a], labels) & (jnp.arange(n)[None, :] != a[:, None])
        dis = ~similarity_from_labels(labels[a], labels)
        j = jax.random.categorical(jax.random.fold_in(kj, c), jnp.where(sim, 0.0, -jnp.inf))
        k = jax.random.categorical(jax.random.fold_in(kk, c), jnp.where(dis, 0.0, -jnp.inf))
        return j, k, jnp.any(sim, 1) & jnp.any(dis, 1)

    j, k, ok = jax.lax.map(draw, (jnp.arange(n_chunks), anchors))
    t = jnp.stack([anchors.ravel(), j.ravel(), k.ravel()], 1)[:n_triplets].astype(jnp.int32)
    ok = ok.ravel()[:n_triplets]
    return jnp.where(ok[:, None], t, 0), ok


def prepare_fit(features, labels, bits, *, supervised: bool):
    """The checks every ``fit`` starts with: features ``(n, d)`` finite, ``bits > 0``, and
    labels of matching length (required when ``supervised``; checked if given otherwise).
    Returns ``(x float32, labels int32 or None, bits)``."""
    bits = check_bits(bits)
    x = check_features(features, "features")
    if supervised or labels is not None:
        labels = check_labels(labels, x.shape[0])
    return x, labels, bits
