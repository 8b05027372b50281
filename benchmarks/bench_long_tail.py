"""Rating models on generated long-tail catalogues, against the bias model.

Each catalogue has 1,500 users of log-normal activity and 4,000 items of
Zipf-like popularity (exponent 1.1): about 58,000 distinct ratings 1-5 of a
rank-5 model plus user and item biases and noise 0.8, rounded; a sixth of
the items are rated once in training. 20 % of the ratings are held out; the
held-out ratings of items seen in training are scored (RMSE, and RMSE on the
items with at most 3 training ratings), and each model's top-10 lists are
summarised by the median number of training ratings of the items in them (1:
the lists are made of items rated once). The bias model (``biases=True``,
diag, ``mean_precision_prior=1e4``) is the baseline, fitted in the same
process; the RMSE ratio is to its RMSE. ``PRESET_RATINGS`` is shown with its
mean and noise priors, without them (the preset before they were added), and
with one of them.

Run: ``python benchmarks/bench_long_tail.py [--seeds 0 1]``.
"""

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skgmmfill import PRESET_RATINGS, MaskedGaussianMixtureImputer

WITHOUT_PRIORS = dict(PRESET_RATINGS, mean_precision_prior=None, noise_variance_prior=None)
MODELS = {
    "user + item biases": dict(biases=True, covariance_type="diag", mean_precision_prior=1e4),
    "no mean or noise prior": WITHOUT_PRIORS,
    "mean prior only": dict(WITHOUT_PRIORS, mean_precision_prior=PRESET_RATINGS["mean_precision_prior"]),
    "noise prior only": dict(WITHOUT_PRIORS, noise_variance_prior=PRESET_RATINGS["noise_variance_prior"]),
    "PRESET_RATINGS": dict(PRESET_RATINGS),
}
RARE = 3


def catalogue(seed, n_users=1500, n_items=4000, n_draws=80_000, rank=5):
    """``(users, items, ratings, n_users, n_items)`` of distinct (user, item) pairs."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    activity = rng.lognormal(0.0, 1.0, n_users)
    users = rng.choice(n_users, size=int(1.2 * n_draws), p=activity / activity.sum())
    items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum())
    pairs = np.unique(users.astype(np.int64) * n_items + items)[:n_draws]
    users, items = pairs // n_items, pairs % n_items
    user_factors, item_factors = (0.35 * rng.normal(size=(size, rank)) for size in (n_users, n_items))
    ratings = (3.5 + rng.normal(0, 0.4, n_users)[users] + rng.normal(0, 0.5, n_items)[items]
               + np.einsum("na,na->n", user_factors[users], item_factors[items]) + rng.normal(0, 0.8, len(users)))
    return users, items, np.clip(np.round(ratings), 1, 5), n_users, n_items


def evaluate(seed):
    users, items, ratings, n_users, n_items = catalogue(seed)
    held_out = np.random.default_rng(seed + 100).uniform(size=len(ratings)) < 0.2
    train = sp.csr_array((ratings[~held_out], (users[~held_out], items[~held_out])), shape=(n_users, n_items))
    counts = np.bincount(items[~held_out], minlength=n_items)
    scored = held_out & (counts[items] > 0)
    rare = scored & (counts[items] <= RARE)
    print(f"\nseed {seed}: {len(ratings):,} ratings, {(counts == 1).sum()} items rated once in training, "
          f"{scored.sum():,} held-out ratings scored ({rare.sum():,} of items with <= {RARE} training ratings)")
    print(f"{'model':<28} {'RMSE':>7} {'ratio':>6} {'rare RMSE':>10} {'top-10 median count':>20} {'fit s':>6}")
    baseline = None
    for name, params in MODELS.items():
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning))
            model = MaskedGaussianMixtureImputer(**params, min_value=1, max_value=5, keep_empty_features=True,
                                                 random_state=0).fit(train)
        seconds = time.perf_counter() - tic
        error = model.predict_entries(train, users[scored], items[scored]) - ratings[scored]
        rmse = np.sqrt(np.mean(error**2))
        rare_rmse = np.sqrt(np.mean((model.predict_entries(train, users[rare], items[rare]) - ratings[rare]) ** 2))
        top = model.recommend(train, 10)
        baseline = rmse if baseline is None else baseline
        print(f"{name:<28} {rmse:>7.4f} {rmse / baseline:>6.3f} {rare_rmse:>10.4f} "
              f"{np.median(counts[top[top >= 0]]):>20.0f} {seconds:>6.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    for seed in parser.parse_args().seeds:
        evaluate(seed)


if __name__ == "__main__":
    main()
