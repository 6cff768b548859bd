"""The joint fit's fast linear algebra gives what the plain dense computation gives.

Truth: ``scipy.optimize.nnls`` on the dense matrix (an independent NNLS implementation) and
the dense products / QR projection that the block-structured versions replace.
"""

import numpy as np
from scipy.optimize import nnls

from pipeline.fitting.blocks import BlockColumns
from pipeline.fitting.solver import kaufman_jacobian, nonneg_solve_normal


def _blocks(rng, n_cond=4, rows=60, n_metab=5, n_shared=2):
    """Blocks whose first ``n_shared`` metabolites share one coefficient across conditions
    (as a modelled MM S0 does) and whose others are free per condition."""
    index = np.zeros((n_cond, n_metab), dtype=int)
    index[:, :n_shared] = np.arange(n_shared)
    free = n_metab - n_shared
    index[:, n_shared:] = n_shared + np.arange(n_cond)[:, None] * free + np.arange(free)
    n_linear = n_shared + n_cond * free
    blocks = rng.normal(size=(n_cond, rows, n_metab))
    blocks[..., -1] += 0.95 * blocks[..., -2]  # correlated columns, as overlapping metabolites
    return BlockColumns(blocks, index, n_linear)


def test_block_columns_products_match_the_dense_matrix():
    rng = np.random.default_rng(3)
    cols = _blocks(rng)
    dense = cols.dense()
    coef = rng.normal(size=cols.n_linear)
    y = rng.normal(size=dense.shape[0])
    assert np.allclose(cols.matvec(coef), dense @ coef, rtol=1e-12, atol=1e-12)
    assert np.allclose(cols.rmatvec(y), dense.T @ y, rtol=1e-12, atol=1e-12)
    assert np.allclose(cols.gram(), dense.T @ dense, rtol=1e-12, atol=1e-12)
    d = rng.normal(size=(dense.shape[0], 3))
    assert np.allclose(cols.rmatvec(d), dense.T @ d, rtol=1e-12, atol=1e-12)


def test_block_kaufman_jacobian_matches_the_qr_projection():
    rng = np.random.default_rng(4)
    cols = _blocks(rng)
    dense = cols.dense()
    d_perp = rng.normal(size=(dense.shape[0], 6))
    for trial in range(5):
        coef = np.abs(rng.normal(size=cols.n_linear))
        coef[rng.random(cols.n_linear) < 0.3] = 0.0  # some columns inactive
        q, _ = np.linalg.qr(dense[:, coef > 0])  # the projection off the active columns
        expected = -(d_perp - q @ (q.T @ d_perp))
        assert np.allclose(kaufman_jacobian(d_perp, dense, coef), expected, atol=1e-10), trial
        assert np.allclose(cols.kaufman_jacobian(d_perp, coef), expected, atol=1e-10), trial


def _no_dense():
    raise AssertionError("the Gram-system search should have found the optimum")


def test_nonneg_solve_normal_is_the_exact_nnls_whatever_the_guess():
    """Exact without falling back to the dense solver (``dense`` would raise)."""
    rng = np.random.default_rng(5)
    for trial in range(20):
        cols = _blocks(rng, n_cond=5, rows=80, n_metab=6)
        dense = cols.dense()
        truth_coef = np.maximum(rng.normal(size=cols.n_linear), 0.0)
        y = dense @ truth_coef + 0.5 * rng.normal(size=dense.shape[0])
        expected, _ = nnls(dense, y, maxiter=50 * cols.n_linear)
        for guess in (None, np.ones(cols.n_linear, bool), rng.random(cols.n_linear) < 0.5):
            got = nonneg_solve_normal(cols.gram(), cols.rmatvec(y), float(np.linalg.norm(y)),
                                      guess, _no_dense)
            assert np.all(got >= 0)
            assert np.allclose(got, expected, atol=1e-9), (trial, guess)
