"""SDH, FSDH and KSH against independent NumPy float64 transcriptions of the authors' MATLAB code.

Each reference below is written from the authors' published algorithm (SDH.m and FSDH.m as in
the SSHBIR toolkit, KSH_demo.m and OptProjectionFast.m of ColumbiaDVMM/Supervised-Hashing-with-
Kernels), in NumPy float64, without calling jhash. jhash runs on the same inputs (features,
labels, initial codes; float64 via ``jax.enable_x64``) and the objective after each outer
iteration (SDH, FSDH) or after each greedy bit (KSH) must agree.

The one deliberate difference kept by jhash: its hash functions' intercept is not penalised
(the authors append a column of ones to the features, so their ridge ``delta`` shrinks it too).
The references follow the authors, so the SDH / FSDH objectives are compared to a relative
tolerance that covers that term (delta * ||c||^2 against the whole objective).
"""
from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg


# ------------------------------------------------------------------ references (NumPy float64)
def ref_ridge(x, y, lam):
    """The authors' RRC: (X^T X + lam I)^-1 X^T Y."""
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def ref_sign(v):
    return np.where(v >= 0, 1.0, -1.0)


def ref_objective(kind, b, w, p1, y, phi1, lam, nu, delta):
    fit = np.sum((y - b @ w) ** 2) if kind == "sdh" else np.sum((b - y @ w) ** 2)
    return fit + lam * np.sum(w ** 2) + nu * (np.sum((b - phi1 @ p1) ** 2) + delta * np.sum(p1[:-1] ** 2))


def ref_sdh(phi, y, b, lam, nu, delta, iters, sweeps=10):
    """SDH.m (L2 loss): G- and F-step, then per iteration B-step (DCC), G-step, F-step."""
    phi1 = np.hstack([phi, np.ones((len(phi), 1))])  # the authors' ones column
    w = ref_ridge(b, y, lam)              # (q, c)
    p1 = ref_ridge(phi1, b, delta)        # (m + 1, q)
    history = []
    for _ in range(iters):
        q = nu * phi1 @ p1 + y @ w.T
        for _ in range(sweeps):
            old = b.copy()
            for k in range(b.shape[1]):
                others = [j for j in range(b.shape[1]) if j != k]
                b[:, k] = ref_sign(q[:, k] - b[:, others] @ w[others] @ w[k])
            if np.array_equal(b, old):
                break
        history.append(ref_objective("sdh", b, w, p1, y, phi1, lam, nu, delta))
        w = ref_ridge(b, y, lam)
        p1 = ref_ridge(phi1, b, delta)
    return np.array(history), b


def ref_fsdh(phi, y, b, lam, nu, delta, iters):
    """FSDH.m: W and P from the initial codes, then per iteration B = sign(nu phi P + Y W), W, P."""
    phi1 = np.hstack([phi, np.ones((len(phi), 1))])
    w = ref_ridge(y, b, lam)
    p1 = ref_ridge(phi1, b, delta)
    history = []
    for _ in range(iters):
        b = ref_sign(nu * phi1 @ p1 + y @ w)
        history.append(ref_objective("fsdh", b, w, p1, y, phi1, lam, nu, delta))
        w = ref_ridge(y, b, lam)
        p1 = ref_ridge(phi1, b, delta)
    return np.array(history), b


def ref_opt_projection(k, s, a0, iters=500):
    """OptProjectionFast.m: Nesterov's accelerated gradient with backtracking on -phi(Ka)^T S phi(Ka)."""
    n = k.shape[0]

    def cost_grad(a):
        with np.errstate(over="ignore"):
            yv = 2.0 / (1.0 + np.exp(-(k @ a))) - 1.0
        sy = s @ yv
        return -yv @ sy, -k.T @ (sy * (1.0 - yv ** 2))

    cost = [cost_grad(a0)[0]] * 2
    prev, cur = a0.copy(), a0.copy()
    d = [0.0, 1.0]
    beta = 1.0
    for t in range(iters):
        alpha = (d[t] - 1.0) / d[t + 1]
        v = cur + alpha * (cur - prev)
        gv, dgv = cost_grad(v)
        accepted = False
        for j in range(51):
            bj = 2.0 ** j * beta
            z = v - dgv / bj
            gz = cost_grad(z)[0]
            dif = z - v
            if gz <= gv + dgv @ dif + bj * (dif @ dif) / 2:
                accepted, beta, prev, cur = True, bj, cur, z
                cost.append(gz)
                break
        if not accepted:
            break
        d.append((1.0 + np.sqrt(1.0 + 4.0 * d[t + 1] ** 2)) / 2.0)
        if abs(cost[-1] - cost[-2]) / n <= 1e-2:
            break
    return cur


def ref_ksh(kbar, s0, bits):
    """KSH_demo.m's greedy loop: spectral start (eig(LM, RM), scaled to a^T RM a = l), the
    accelerated descent, kept when sign(K a)^T S sign(K a) improves; S <- S - y y^T."""
    l = kbar.shape[0]
    s = bits * s0
    rm = kbar.T @ kbar
    losses = [np.sum(s ** 2)]
    for _ in range(bits):
        _, vecs = scipy.linalg.eigh(kbar.T @ s @ kbar, rm)
        a = vecs[:, -1]
        a = np.sqrt(l / (a @ rm @ a)) * a
        a1 = ref_opt_projection(kbar, s, a)
        y0, y1 = ref_sign(kbar @ a), ref_sign(kbar @ a1)
        y = y1 if y1 @ s @ y1 > y0 @ s @ y0 else y0
        s = s - np.outer(y, y)
        losses.append(np.sum(s ** 2))
    return np.array(losses)


# ------------------------------------------------------------------ problems
def kernel_problem(seed, n=150, m=20, classes=4, d=6):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 2.0
    labels = rng.integers(0, classes, n)
    x = centers[labels] + rng.normal(size=(n, d))
    anchors = x[rng.choice(n, m, replace=False)]
    dist2 = ((x[:, None] - anchors[None]) ** 2).sum(-1)
    sigma = 0.6 * np.mean(np.sqrt(dist2))
    phi = np.exp(-dist2 / (2 * sigma ** 2))
    return rng, phi, labels


@pytest.mark.parametrize("nu", [1e-5, 0.5])
@pytest.mark.parametrize("name, reference, seed", [("sdh", ref_sdh, 0), ("fsdh", ref_fsdh, 1)])
def test_sdh_and_fsdh_objective_per_iteration_match_the_authors_algorithm(name, reference, seed, nu):
    solve = importlib.import_module(f"jhash.shallow.{name}").solve  # the method's jit-able loop
    rng, phi, labels = kernel_problem(seed)
    y = np.eye(4)[labels]
    b0 = ref_sign(rng.normal(size=(len(phi), 8)))
    want, b_ref = reference(phi, y, b0.copy(), lam=1.0, nu=nu, delta=1e-2, iters=5)
    with jax.enable_x64(True):
        b, _, _, got = jax.jit(lambda p, yy, bb: solve(p, yy, bb, lam=1.0, nu=nu, delta=1e-2,
                                                        outer_iterations=5))(phi, y, b0)
        got = np.asarray(got)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=2e-3)
    assert np.mean(np.asarray(b) == b_ref) > 0.99


@pytest.mark.parametrize("seed", [2, 3])
def test_ksh_objective_per_bit_matches_the_authors_algorithm(seed):
    from jhash.shallow import ksh

    _, phi, labels = kernel_problem(seed, n=120, m=15, classes=3)
    kbar = phi - phi.mean(0)
    s0 = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    bits = 6
    want = ref_ksh(kbar, s0, bits)
    with jax.enable_x64(True):
        _, got, _ = jax.jit(lambda k, s: ksh.greedy_bits(k, s, bits))(kbar, s0)
        got = np.asarray(got)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    assert np.all(np.diff(got) < 0)  # every bit fits the residual better


def test_ksh_accelerated_descent_matches_the_reference_and_decreases():
    """One descent in float32 (the production dtype): it lowers the smooth cost (an accelerated
    method need not at every step), to that of the float64 reference from the same start."""
    from jhash.shallow import ksh

    _, phi, labels = kernel_problem(4, n=100, m=12, classes=3)
    kbar = phi - phi.mean(0)
    s = 4.0 * np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    a0 = np.asarray(ksh.spectral_start(jnp.asarray(kbar, jnp.float32), jnp.asarray(s, jnp.float32)), np.float64)
    a_ref = ref_opt_projection(kbar, s, a0)
    a, costs, t = jax.jit(ksh.nesterov_descent)(jnp.asarray(kbar, jnp.float32), jnp.asarray(s, jnp.float32),
                                                jnp.asarray(a0, jnp.float32))
    costs = np.asarray(costs)[: int(t) + 1]
    assert int(t) >= 1 and costs[-1] < costs[0]
    def smooth(a):
        p = 2.0 / (1.0 + np.exp(-(kbar @ a))) - 1.0
        return -p @ s @ p

    assert smooth(np.asarray(a, np.float64)) == pytest.approx(smooth(a_ref), rel=1e-3)
