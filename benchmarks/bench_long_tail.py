"""Rating models on generated long-tail catalogues, against the bias model and SVD++.

Each catalogue has 1,500 users of log-normal activity and 4,000 items of
Zipf-like popularity (exponent 1.1): about 58,000 distinct ratings of a
rank-5 model plus user and item biases and noise 0.8, rounded to 1-5 stars
(even seeds) or to half stars on 0.5-5 (odd seeds); a sixth of the items are
rated once in training. 20 % of the ratings are held out, those of items
without any training rating (new items) included. Columns: RMSE (and its
ratio to the bias model's, fitted first in the same process), MAE, RMSE on
the held-out ratings of items with at most 3 training ratings and on those of
new items, precision and NDCG at 10 of each user's top-10 unrated items
(held-out ratings of at least 4 are relevant), the median number of training
ratings of the recommended items (1: lists of items rated once), and the fit
time.

Models: the bias model (``biases=True``, diag, ``mean_precision_prior=1e4``),
with the default shrinkage 25 and with ``bias_shrinkage="auto"``;
``PRESET_RATINGS`` without its mean and noise priors, with one of them, as it
is, as the previous preset (the users' offsets subtracted first, pattern strength 1), with implicit feedback, and tuned over
``RATINGS_GRID`` by GridSearchCV with the masked-RMSE scorer on the training
ratings alone; ALS with biases (bench_rating_models.py);
SVD++ by stochastic gradient descent (:func:`svdpp`, written here with
Surprise's defaults); item popularity (top-N only); and, top-N only, the
oracle: each user's items ranked by the generator's own odds of rating them
times the chance of a rating of at least 4, the best any ranking can expect. The bias model and
``PRESET_RATINGS`` recommend by predicted rating, and again ranked by hits
(``recommend(rank_by="hits")``: popularity times the chance of a rating above
the mean). Each catalogue's table ends with P@10 differences paired over its
users, with bootstrap standard errors: the preset's against item popularity and
the bias model's, and the oracle's against popularity (the most any ranking gains).

Seed 2 (and every third seed) draws which items users rate by their taste
too (:data:`SELECTION`), as real catalogues do: ratings missing not at random.

Run: ``python benchmarks/bench_long_tail.py [--seeds 0 1 2]``.
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.stats import norm as gaussian
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold

from skgmmfill import PRESET_RATINGS, RATINGS_GRID, MaskedGaussianMixtureImputer
from skgmmfill.metrics import _hits, make_masked_rmse_scorer, ndcg_at_k

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_rating_models import PRESET_OFFSETS_FIRST, als  # noqa: E402

WITHOUT_PRIORS = dict(PRESET_RATINGS, mean_precision_prior=None, noise_variance_prior=None)
BIASES = dict(biases=True, covariance_type="diag", mean_precision_prior=1e4)
MODELS = {
    "user + item biases": BIASES,
    "biases, shrinkage estimated": dict(BIASES, bias_shrinkage="auto"),
    "no mean or noise prior": WITHOUT_PRIORS,
    "mean prior only": dict(WITHOUT_PRIORS, mean_precision_prior=PRESET_RATINGS["mean_precision_prior"]),
    "noise prior only": dict(WITHOUT_PRIORS, noise_variance_prior=PRESET_RATINGS["noise_variance_prior"]),
    "PRESET_RATINGS": dict(PRESET_RATINGS),
    "  without the pattern prior": dict(PRESET_RATINGS, loading_pattern_prior=None),
    "  noise prior 5 (the previous preset)": dict(PRESET_RATINGS, noise_variance_prior=5.0),
    "  offsets first, pattern 1": PRESET_OFFSETS_FIRST,
    "  implicit feedback 10": dict(PRESET_RATINGS, implicit_precision_prior=10.0),
}
RARE = 3
SELECTION = 1.5
"""How strongly taste decides what the users of seed 2 (5, 8, ...) rate: the odds of rating an item
grow by e^1.5 ~ 4.5 per point of expected rating."""


def catalogue(seed, n_users=1500, n_items=4000, n_draws=80_000, rank=5, selection=0.0, truth=False):
    """``(users, items, ratings, n_users, n_items)`` of distinct (user, item) pairs.

    With ``truth``, also the generator's ``(n_users, n_items)`` expected
    ratings before noise and log odds of picking each item (for the oracle).

    ``selection`` > 0 makes users rate what they expect to like, as in real
    catalogues (ratings missing not at random): a user picks item ``i`` with
    odds ``popularity_i * exp(selection * taste_ui)``, ``taste_ui`` the item's
    bias plus the user-item interaction of the rating model.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.1
    activity = rng.lognormal(0.0, 1.0, n_users)
    users = rng.choice(n_users, size=int(1.2 * n_draws), p=activity / activity.sum())

    def tastes():
        user_factors, item_factors = (0.35 * rng.normal(size=(size, rank)) for size in (n_users, n_items))
        return user_factors, item_factors, rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)

    log_odds = np.log(popularity)[np.newaxis, :]
    if selection:
        user_factors, item_factors, user_bias, item_bias = tastes()
        odds = popularity * np.exp(selection * (item_bias + user_factors @ item_factors.T))
        log_odds = np.log(odds)
        cumulative = np.cumsum(odds / odds.sum(axis=1, keepdims=True), axis=1)
        cumulative += np.arange(n_users)[:, None]  # row u spans (u, u + 1]: one search for every draw
        items = np.minimum(np.searchsorted(cumulative.ravel(), users + rng.uniform(size=len(users))) % n_items,
                           n_items - 1)
    else:
        items = rng.choice(n_items, size=len(users), p=popularity / popularity.sum())
    pairs = np.unique(users.astype(np.int64) * n_items + items)[:n_draws]
    users, items = pairs // n_items, pairs % n_items
    if not selection:  # drawn after the pairs, as before this option existed: seeds 0 and 1 unchanged
        user_factors, item_factors, user_bias, item_bias = tastes()
    ratings = (3.5 + user_bias[users] + item_bias[items]
               + np.einsum("na,na->n", user_factors[users], item_factors[items]) + rng.normal(0, NOISE, len(users)))
    result = users, items, np.clip(np.round(ratings), 1, 5), n_users, n_items
    if truth:
        expected = 3.5 + user_bias[:, np.newaxis] + item_bias + user_factors @ item_factors.T
        return (*result, expected, np.broadcast_to(log_odds, expected.shape))
    return result


NOISE = 0.8
HALF_STAR_JITTER = 0.3


def log_like_probability(expected, half_stars):
    """log P(rating >= 4) of a pair whose expected rating is ``expected``, under the generator: noise
    ``NOISE``, rounded to stars, then (half stars) a jitter ``HALF_STAR_JITTER`` rounded to half stars."""
    if not half_stars:
        return gaussian.logsf((3.5 - expected) / NOISE)
    stars = np.arange(1, 6)
    lower = np.where(stars == 1, -np.inf, stars - 0.5)
    upper = np.where(stars == 5, np.inf, stars + 0.5)
    probability = 0.0
    for star, low, high in zip(stars, lower, upper):  # P(star) P(star + jitter >= 3.75)
        p_star = gaussian.cdf((high - expected) / NOISE) - gaussian.cdf((low - expected) / NOISE)
        probability = probability + p_star * gaussian.sf((3.75 - star) / HALF_STAR_JITTER)
    return np.log(np.maximum(probability, 1e-300))


def svdpp(train, n_factors=20, n_epochs=20, lr=0.007, reg=0.02, seed=0):
    """SVD++ (Koren 2008) by stochastic gradient descent, the reference written here.

    ``r_ui ~ m + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``
    with ``N(u)`` the items ``u`` rated in training; Surprise's defaults
    (20 factors, 20 epochs, learning rate 0.007, penalty 0.02, start
    N(0, 0.1)). Users are visited in random order and their ratings one at a
    time; the gradient of the ``y_j`` is summed over a user's ratings and
    applied once per user (the usual shortcut: per rating it costs
    ``O(|N(u)|)``). Returns a function of ``(rows, cols)`` and the dense score
    matrix's maker.
    """
    train = sp.csr_array(train)
    mean = float(train.data.mean())
    n_users, n_items = train.shape
    rng = np.random.default_rng(seed)
    user_bias, item_bias = np.zeros(n_users), np.zeros(n_items)
    P, Q, Y = (rng.normal(0.0, 0.1, (size, n_factors)) for size in (n_users, n_items, n_items))
    for _ in range(n_epochs):
        for u in rng.permutation(n_users):
            start, stop = train.indptr[u], train.indptr[u + 1]
            if start == stop:
                continue
            items, ratings = train.indices[start:stop], train.data[start:stop]
            norm = 1.0 / np.sqrt(stop - start)
            implicit = norm * Y[items].sum(axis=0)
            y_gradient = np.zeros(n_factors)
            for position in rng.permutation(stop - start):
                i, rating = items[position], ratings[position]
                taste = P[u] + implicit
                error = rating - (mean + user_bias[u] + item_bias[i] + Q[i] @ taste)
                user_bias[u] += lr * (error - reg * user_bias[u])
                item_bias[i] += lr * (error - reg * item_bias[i])
                q = Q[i].copy()
                Q[i] += lr * (error * taste - reg * Q[i])
                P[u] += lr * (error * q - reg * P[u])
                y_gradient += error * norm * q
            Y[items] += lr * (y_gradient - reg * Y[items])

    def tastes():
        counts = np.diff(train.indptr)
        mask = sp.csr_array((np.ones(train.nnz), train.indices, train.indptr), shape=train.shape)
        return P + (mask @ Y) / np.sqrt(np.maximum(counts, 1))[:, None]

    taste = tastes()

    def predict(rows, cols):
        return mean + user_bias[rows] + item_bias[cols] + np.einsum("ij,ij->i", taste[rows], Q[cols])

    def scores():
        return mean + user_bias[:, None] + item_bias + taste @ Q.T

    return predict, scores


def als_model(train):
    """The ALS baseline of bench_rating_models.py, 10 factors, penalty 0.1, with its dense scores."""
    predict = als(train, 10, 0.1)
    rows, cols = np.indices(train.shape).reshape(2, -1)
    return predict, lambda: predict(rows, cols).reshape(train.shape)


def top_of_scores(scores, train, n=10):
    """Each user's ``n`` best unrated items by ``scores``."""
    scores = np.array(scores, dtype=np.float64)
    scores[train.nonzero()] = -np.inf
    top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)


def tuned(train, scale):
    """PRESET_RATINGS tuned over RATINGS_GRID by GridSearchCV on the training ratings alone, one fit per core."""
    search = GridSearchCV(MaskedGaussianMixtureImputer(**PRESET_RATINGS, **scale, random_state=0,
                                                       keep_empty_features=True),
                          RATINGS_GRID, scoring=make_masked_rmse_scorer(fraction=0.2, random_state=0),
                          cv=KFold(3, shuffle=True, random_state=0), n_jobs=2)
    return search.fit(train).best_estimator_


def evaluate(seed, half_stars=False, selection=0.0):
    users, items, ratings, n_users, n_items, expected, log_odds = catalogue(seed, selection=selection, truth=True)
    low = 1.0
    if half_stars:  # the same tastes on a 0.5-5 scale in half stars
        jitter = np.random.default_rng(seed + 7).normal(0.0, HALF_STAR_JITTER, len(ratings))
        ratings, low = np.clip(np.round(2.0 * (ratings + jitter)) / 2.0, 0.5, 5.0), 0.5
    scale = {"min_value": low, "max_value": 5.0}
    held_out = np.random.default_rng(seed + 100).uniform(size=len(ratings)) < 0.2
    train = sp.csr_array((ratings[~held_out], (users[~held_out], items[~held_out])), shape=(n_users, n_items))
    counts = np.bincount(items[~held_out], minlength=n_items)
    test_users, test_items, test_ratings = users[held_out], items[held_out], ratings[held_out]
    new = counts[test_items] == 0
    rare = ~new & (counts[test_items] <= RARE)
    liked = test_ratings >= 4.0
    print(f"\nseed {seed}{' (half stars)' if half_stars else ''}"
          f"{f', users rate what they like (selection {selection:g})' if selection else ''}: {len(ratings):,} ratings, "
          f"{(counts == 1).sum()} items rated once in training; {held_out.sum():,} held out, {rare.sum():,} of "
          f"items with <= {RARE} training ratings, {new.sum():,} of items without any (new); relevant: >= 4")
    print(f"{'model':<38} {'RMSE':>7} {'ratio':>6} {'MAE':>7} {'rare':>7} {'new':>7} {'P@10':>7} {'NDCG@10':>8} "
          f"{'top count':>9} {'fit s':>6}")

    def ours(params, rank_by="rating"):
        def fit():
            model = MaskedGaussianMixtureImputer(**params, **scale, keep_empty_features=True, random_state=0)
            return fitted_ours(model.fit(train), rank_by)
        return fit

    def fitted_ours(model, rank_by="rating"):
        return (lambda r, c: model.predict_entries(train, r, c)), (lambda: model.recommend(train, 10, rank_by=rank_by))

    def baseline(make):
        def fit():
            predict, scores = make(train)
            return (lambda r, c: np.clip(predict(r, c), low, 5.0)), (lambda: top_of_scores(scores(), train))
        return fit

    def popularity():
        scores = np.broadcast_to(counts.astype(np.float64), (n_users, n_items))  # the most rated first
        return (lambda r, c: np.full(len(r), np.nan)), (lambda: top_of_scores(scores, train))

    models = {name: ours(params) for name, params in MODELS.items()}
    models["PRESET_RATINGS tuned"] = lambda: fitted_ours(tuned(train, scale))
    for name in ("user + item biases", "biases, shrinkage estimated", "PRESET_RATINGS"):
        models[f"{name}, by hits"] = ours(MODELS[name], rank_by="hits")
    models["ALS (f=10, reg 0.1)"] = baseline(als_model)
    models["SVD++ by SGD"] = baseline(svdpp)
    models["item popularity"] = popularity

    def oracle():  # the generator's own odds of rating an item and chance of liking it: no ranking does better
        scores = log_odds + log_like_probability(expected, half_stars)
        return (lambda r, c: np.full(len(r), np.nan)), (lambda: top_of_scores(scores, train))

    models["oracle: true odds x P(like)"] = oracle
    baseline_rmse = None
    user_precisions = {}
    for name, fit in models.items():
        tic = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (ConvergenceWarning, UserWarning))
            predict, recommend = fit()
        seconds = time.perf_counter() - tic
        predicted = predict(test_users, test_items)
        errors = predicted - test_ratings
        rmse = float(np.sqrt(np.mean(errors**2)))
        baseline_rmse = rmse if baseline_rmse is None else baseline_rmse
        top = recommend()
        user_precisions[name] = _hits(top, test_users[liked], test_items[liked], 10)[0].mean(axis=1)  # P@10
        cells = [f"{np.sqrt(np.mean(errors[part] ** 2)):>7.4f}" for part in (rare, new)]
        columns = (f"{rmse:>7.4f} {rmse / baseline_rmse:>6.3f} {np.mean(np.abs(errors)):>7.4f} {' '.join(cells)}"
                   if np.isfinite(rmse) else f"{'':>7} {'':>6} {'':>7} {'':>7} {'':>7}")
        print(f"{name:<38} {columns} {user_precisions[name].mean():>7.4f} "
              f"{ndcg_at_k(top, test_users[liked], test_items[liked]):>8.4f} "
              f"{np.median(counts[top[top >= 0]]):>9.0f} {seconds:>6.1f}", flush=True)
    print_precision_differences(user_precisions)


PAIRED = [("PRESET_RATINGS, by hits", "item popularity"),
          ("PRESET_RATINGS, by hits", "biases, shrinkage estimated, by hits"),
          ("oracle: true odds x P(like)", "item popularity")]


def print_precision_differences(user_precisions, n_draws=2000):
    """P@10 differences of :data:`PAIRED` models, paired over the users with a relevant held-out rating,
    with their bootstrap standard errors (users drawn with replacement): how much of a gap is noise."""
    n_users = len(next(iter(user_precisions.values())))
    draws = np.random.default_rng(0).integers(n_users, size=(n_draws, n_users))
    print(f"P@10 differences over {n_users:,} users (bootstrap standard error, {n_draws:,} draws):")
    for first, second in PAIRED:
        difference = user_precisions[first] - user_precisions[second]
        print(f"  {first} - {second}: {difference.mean():+.4f} +- {difference[draws].mean(axis=1).std():.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    for seed in parser.parse_args().seeds:  # seeds 0, 1: popularity alone decides what is rated; 2: taste too
        evaluate(seed, half_stars=seed % 2 == 1, selection=SELECTION if seed % 3 == 2 else 0.0)


if __name__ == "__main__":
    main()
