"""Where the GAN's quantile MSE on the camel back comes from (issue 13): bias² and
variance over pseudo-experiments, and how much of the variance is the GAN's own
training randomness (two GANs trained with different keys on the same data) rather
than the training sample's noise.

For P pseudo-experiments p (a fresh 100-event camel-back training sample each) and
two training keys k = 1, 2, f_pbk is the fraction of N_gen = 10⁵ generated events in
true-quantile bin b (10 bins, true probability 1/10).  With the quantile MSE of
GANplify (the mean over the N_q bins of (f − 1/N_q)²):

* total MSE    = mean_{p,k,b} (f_pbk − 1/N_q)²            (what the amplification uses)
* bias²        = mean_b (mean_{p,k} f_pbk − 1/N_q)²        (systematic shape error)
* variance     = total − bias²
* GAN's own    = mean_{p,b} (f_pb1 − f_pb2)² / 2           (same data, other key:
                 the training randomness, plus N_gen's multinomial noise ≈ 0.9/10⁶)
* data noise   = variance − GAN's own                      (the training sample's)

Each term with its standard error over pseudo-experiments (terms of one
pseudo-experiment averaged first; bias² by the delta method).  Also: the
amplification of the two-generator mixture measured directly (half of the events
from each GAN), the amplification predicted for a mixture of M generators,
bias² + data noise + GAN's own / M, and the profile of the generated events (fraction
in the gap |x| < 2, the bumps' standard deviations).

    cd REPO && nice -n 19 env PYTHONPATH=$PWD python benchmarks/bench_gan_diagnosis.py \
        [--pseudo-experiments 64] [--gan "steps=1000"] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_amplification import _parse_options  # noqa: E402
from bench_toy import machine_info  # noqa: E402

N_TRAIN = 100
N_GEN = 100_000
N_Q = 10


def camelback_edges(n_q: int) -> np.ndarray:
    """Inner edges (n_q − 1,) of the camel back's true-quantile bins (bumps N(∓4, 1),
    equal weights)."""

    def cdf(x):
        return 0.5 * (stats.norm.cdf(x + 4) + stats.norm.cdf(x - 4))

    levels = np.arange(1, n_q) / n_q
    return np.array(
        [optimize.brentq(lambda x, q=q: cdf(x) - q, -20, 20) for q in levels]
    )


def fractions(samples: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(..., n) samples -> (..., n_q) bin fractions."""
    index = np.searchsorted(edges, samples)
    n_q = edges.size + 1
    counts = np.stack([(index == b).sum(-1) for b in range(n_q)], axis=-1)
    return counts / samples.shape[-1]


def amplification(mse: float) -> float:
    return (N_Q - 1) / (N_Q * N_Q * mse) / N_TRAIN


def diagnose(f: np.ndarray, mixture: np.ndarray) -> dict:
    """``f`` (P, 2, n_q) bin fractions of two keys per pseudo-experiment,
    ``mixture`` (P, n_q) of the two-generator mixture."""
    p_true = 1.0 / N_Q
    n_pe = f.shape[0]
    per_pe_total = np.mean((f - p_true) ** 2, axis=(1, 2))  # (P,)
    total = per_pe_total.mean()
    total_se = per_pe_total.std(ddof=1) / np.sqrt(n_pe)
    mean_f = f.mean(axis=(0, 1))  # (n_q,)
    bias2 = np.mean((mean_f - p_true) ** 2)
    # delta method: bias² = mean_b (m_b − p)², gradient 2 (m_b − p) / n_q
    per_pe_mean = f.mean(axis=1)  # (P, n_q)
    grad = 2 * (mean_f - p_true) / N_Q
    bias2_se = (per_pe_mean @ grad).std(ddof=1) / np.sqrt(n_pe)
    per_pe_own = np.mean((f[:, 0] - f[:, 1]) ** 2, axis=1) / 2  # (P,)
    own = per_pe_own.mean()
    own_se = per_pe_own.std(ddof=1) / np.sqrt(n_pe)
    variance = total - bias2
    data = variance - own
    data_se = (per_pe_total - per_pe_own).std(ddof=1) / np.sqrt(n_pe)
    per_pe_mix = np.mean((mixture - p_true) ** 2, axis=1)
    mix = per_pe_mix.mean()
    mix_se = per_pe_mix.std(ddof=1) / np.sqrt(n_pe)
    truth_mse = (N_Q - 1) / (N_Q * N_Q * N_TRAIN)
    return {
        "total_mse": total,
        "total_mse_stderr": total_se,
        "bias2": bias2,
        "bias2_stderr": bias2_se,
        "variance": variance,
        "gan_own_variance": own,
        "gan_own_variance_stderr": own_se,
        "data_noise_variance": data,
        "data_noise_variance_stderr": data_se,
        "truth_mse_n_train": truth_mse,
        "bias_by_bin": (mean_f - p_true).tolist(),
        "amplification": amplification(total),
        "amplification_stderr": amplification(total) * total_se / total,
        "mixture2_mse": mix,
        "mixture2_amplification": amplification(mix),
        "mixture2_amplification_stderr": amplification(mix) * mix_se / mix,
        "predicted_amplification_by_generators": {
            str(m): amplification(bias2 + data + own / m) for m in (1, 2, 4, 8, 16)
        },
        "amplification_without_bias": amplification(variance),
    }


def profile(samples: np.ndarray) -> dict:
    """Gap fraction and bump widths of (P, n) generated samples."""
    gap = np.mean(np.abs(samples) < 2)
    left = samples[samples < 0]
    right = samples[samples >= 0]
    return {
        "gap_fraction": float(gap),
        "gap_fraction_truth": float(2 * (stats.norm.cdf(6) - stats.norm.cdf(2)) / 2),
        "left_std": float(left[left > -8].std()) if left.size else None,
        "right_std": float(right[right < 8].std()) if right.size else None,
        "left_weight": float(left.size / samples.size),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pseudo-experiments", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--gan", default="")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from jaxunc.models import CamelBack
    from jaxunc.surrogates.gan import GAN

    gan = GAN(**_parse_options(args.gan))
    model = CamelBack()
    theta = {"mu": jnp.float32(0.0)}
    n_pe = args.pseudo_experiments
    key = jax.random.key(args.seed)
    data_key, fit_key, gen_key = jax.random.split(key, 3)
    data = jax.vmap(lambda k: model.sample(k, theta, N_TRAIN))(
        jax.random.split(data_key, n_pe)
    )
    fit_keys = jax.random.split(fit_key, (n_pe, 2))
    start = time.perf_counter()
    params = jax.jit(jax.vmap(jax.vmap(gan.fit, in_axes=(0, None))))(fit_keys, data)
    jax.block_until_ready(params)
    train_seconds = time.perf_counter() - start
    gen_keys = jax.random.split(gen_key, (n_pe, 2))
    generate = jax.jit(
        jax.vmap(jax.vmap(lambda k, p: gan.sample(k, p, N_GEN)), in_axes=(0, 0))
    )
    edges = camelback_edges(N_Q)
    f = np.empty((n_pe, 2, N_Q))
    mixture = np.empty((n_pe, N_Q))
    gap_samples = []
    for lo in range(0, n_pe, 8):
        chunk = jax.tree_util.tree_map(lambda a, lo=lo: a[lo : lo + 8], params)
        x = np.asarray(generate(gen_keys[lo : lo + 8], chunk), np.float64)
        f[lo : lo + 8] = fractions(x, edges)
        half = N_GEN // 2
        mixture[lo : lo + 8] = fractions(
            np.concatenate([x[:, 0, :half], x[:, 1, :half]], axis=-1), edges
        )
        gap_samples.append(x[:, 0, :10_000])
    result = {
        "gan": repr(gan),
        "options": args.gan,
        "pseudo_experiments": n_pe,
        "seed": args.seed,
        "n_train": N_TRAIN,
        "n_gen": N_GEN,
        "n_quantiles": N_Q,
        "train_seconds": train_seconds,
        "machine": machine_info(),
        **diagnose(f, mixture),
        "profile": profile(np.concatenate(gap_samples)),
    }
    r = result
    print(
        f"{args.gan or 'defaults'}: amplification {r['amplification']:.3f} ± "
        f"{r['amplification_stderr']:.3f}; MSE {r['total_mse']:.2e} = bias² "
        f"{r['bias2']:.2e} ± {r['bias2_stderr']:.1e} + data noise "
        f"{r['data_noise_variance']:.2e} ± {r['data_noise_variance_stderr']:.1e} + "
        f"GAN's own {r['gan_own_variance']:.2e} ± {r['gan_own_variance_stderr']:.1e} "
        f"(truth at n_train {r['truth_mse_n_train']:.1e}); 2-generator mixture "
        f"{r['mixture2_amplification']:.3f} ± {r['mixture2_amplification_stderr']:.3f};"
        f" predicted by M {r['predicted_amplification_by_generators']}; without "
        f"bias {r['amplification_without_bias']:.3f}; profile {r['profile']}; "
        f"bias by bin {np.round(r['bias_by_bin'], 4).tolist()}; train "
        f"{train_seconds:.0f} s",
        flush=True,
    )
    if args.json is not None:
        with args.json.open("a") as out:
            out.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
