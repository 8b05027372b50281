"""What the ``skgmmfill`` subcommands do: reading and writing files, fitting, scoring.

:mod:`skgmmfill.cli` parses the command line and imports this module only to
run a command, so that ``--version`` and ``--help`` start in a blink.
"""


import contextlib
import csv
import os
import sys
import time
import warnings
import zipfile

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_val_score

from . import PRESET_COURSE, PRESET_RATINGS, MaskedGaussianMixtureImputer
from ._families import foreign_hyperparameters, resolve_covariance_type
from ._fitted import BATCH_ENTRIES, best_columns
from ._observed import row_batches
from ._output import check_output, open_output
from ._persistence import load_model, save_model
from ._validation import rows_of_entries
from .datasets import load_netflix, read_ratings
from .datasets._readers import (
    RepeatedRatings, SeparatorNotFound, is_data_line, is_number, read_items, sniff_separator, split_line, text_lines,
)
from .metrics import make_masked_rmse_scorer, ndcg_at_k, precision_at_k, recall_at_k, rmse

class InputError(Exception):
    """A file that cannot be read or written as asked; reported in one line."""


# ------------------------------------------------------------------ course


def course_experiment(n_components_list=(1, 12), seeds=range(5), out=None):
    """Fit the course's model for each K and seed; report likelihoods and RMSE.

    For each ``K``, one fit per seed with ``missing_values=0`` and the course's
    conventions; the best seed (highest log-likelihood) fills the matrix, which
    is scored against the complete matrix over all entries (the course's RMSE)
    and over the missing entries whose true rating is known.

    Returns
    -------
    results : dict
        ``{K: {"log_likelihoods": [...], "best_seed": s, "rmse_all": x,
        "rmse_missing": y}}``.
    """
    out = sys.stdout if out is None else out
    start = time.perf_counter()
    X, X_complete = load_netflix(missing_values=0)
    missing_known = (X == 0) & (X_complete != 0)
    print(f"Netflix matrix {X.shape[0]} x {X.shape[1]}, "
          f"{int((X != 0).sum()):,} ratings observed, {int((X == 0).sum()):,} missing.",
          file=out)
    print(f"\n{'K':>3} {'seed':>4} {'iters':>5} {'log-likelihood':>20} {'fit (s)':>8}", file=out)
    results = {}
    fit_seconds = 0.0
    for n_components in n_components_list:
        fits = []
        for seed in seeds:
            imputer = MaskedGaussianMixtureImputer(
                n_components, **PRESET_COURSE, missing_values=0, random_state=seed
            )
            tic = time.perf_counter()
            imputer.fit(X)
            elapsed = time.perf_counter() - tic
            fit_seconds += elapsed
            log_likelihood = imputer.lower_bound_ * X.shape[0]
            fits.append((log_likelihood, seed, imputer))
            print(f"{n_components:>3} {seed:>4} {imputer.n_iter_:>5} "
                  f"{log_likelihood:>20.4f} {elapsed:>8.3f}", file=out)
        _, best_seed, best = max(fits, key=lambda fit: fit[0])
        X_pred = best.transform(X)
        results[n_components] = {
            "log_likelihoods": [fit[0] for fit in fits],
            "best_seed": best_seed,
            "rmse_all": rmse(X_complete, X_pred),
            "rmse_missing": rmse(X_complete, X_pred, mask=missing_known),
        }
    print(f"\n{'K':>3} {'best seed':>9} {'best log-likelihood':>20} "
          f"{'RMSE (all)':>11} {'RMSE (missing, known)':>22}", file=out)
    for n_components, result in results.items():
        best_ll = max(result["log_likelihoods"])
        print(f"{n_components:>3} {result['best_seed']:>9} {best_ll:>20.4f} "
              f"{result['rmse_all']:>11.6f} {result['rmse_missing']:>22.6f}", file=out)
    print(f"\nfitting {fit_seconds:.2f} s, wall time {time.perf_counter() - start:.2f} s",
          file=out)
    return results


# ------------------------------------------------------------------- files

# Files with these suffixes (before .gz/.bz2/.zip) are rating files, one
# user, item, rating per line, without --triplets.
RATING_SUFFIXES = ("data", "dat", "tsv")


def _kind(path, triplets):
    name = _strip_compression(path.lower())
    if triplets or name.rsplit(".", 1)[-1] in RATING_SUFFIXES:
        return "triplets"
    for extension in ("txt", "csv", "npz"):
        if name.endswith("." + extension):
            return extension
    raise InputError(f"'{path}': unknown file type; use .txt, .csv or .npz for a matrix, "
                     "or --triplets for a file of user, item, rating lines")


def _strip_compression(name):
    for suffix in (".gz", ".bz2", ".zip"):
        name = name.removesuffix(suffix)
    return name


def read_matrix(path, *, triplets=False, missing_values=np.nan, sep=None, columns=(0, 1, 2),
                duplicates="error", verbose=False):
    """Read a matrix file, or a rating file (``triplets``).

    Returns
    -------
    X : ndarray or scipy.sparse.csr_array
        Dense with NaN at missing entries, or sparse (stored = observed).
    labels : tuple of (row_labels, column_labels) or None
        For rating files, the user and item ids of the rows and columns.
    """
    kind = _kind(path, triplets)
    try:
        if kind == "triplets":
            X, users, items = read_ratings(path, sep=sep, columns=columns, duplicates=duplicates, verbose=verbose)
            return X, (users, items)
        if kind == "npz":
            with np.load(path, allow_pickle=False) as arrays:
                if "format" in arrays and "indptr" in arrays:
                    return sp.csr_array(sp.load_npz(path)), None
                if "X" not in arrays:
                    raise InputError(f"'{path}': an .npz file needs an array named 'X' "
                                     "or a sparse matrix saved with scipy.sparse.save_npz")
                X = np.asarray(arrays["X"], dtype=np.float64)
        else:
            X = _read_dense_text(path, "," if kind == "csv" else sep)
    except InputError:
        raise
    except SeparatorNotFound as error:
        raise InputError(f"{error.problem}; give --sep") from error
    except RepeatedRatings as error:
        raise InputError(f"{error.problem}; keep one rating per pair, or average them with --duplicates mean") \
            from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        message = (error.strerror if isinstance(error, OSError) else None) or str(error).splitlines()[0]
        if isinstance(error, OSError) or f"'{path}'" not in message:
            message = f"cannot read '{path}': {message}"
        raise InputError(message) from error
    if X.ndim != 2 or X.size == 0:
        raise InputError(f"'{path}': expected a non-empty 2-D matrix, got shape {X.shape}")
    if not np.isnan(missing_values):
        if np.isnan(X).any():
            raise InputError(f"'{path}': has empty or non-numeric cells, but the missing "
                             f"entries are marked by {missing_values:g}")
        X = np.where(X == missing_values, np.nan, X)
    if not np.isnan(X).any() and X.shape[1] in (3, 4) and X.shape[0] > 10 and _integers(X[:, :2]):
        raise InputError(f"'{path}': {X.shape[0]} complete rows of {X.shape[1]} numbers, the first two "
                         "integers: this looks like user, item, rating lines, not a matrix with gaps; "
                         "pass --triplets to read it as ratings")
    return X, None


def _integers(values):
    return bool(np.all(values == np.round(values)))


def _read_dense_text(path, delimiter):
    """A matrix from text: one row a line; empty or ``nan`` cells are missing.

    The delimiter is ``delimiter``, or tabs when the file has any (so that
    empty cells between tabs stay cells), or whitespace. Quoted fields are
    read as CSV does; a first line without any number (a header) is skipped,
    and so are lines starting with ``#`` (comments).
    """
    lines = list(text_lines(path))
    if delimiter is None and any("\t" in line for line in lines if is_data_line(line)):
        delimiter = "\t"
    rows, width, header_seen = [], None, False
    for number, line in enumerate(lines, start=1):
        if not is_data_line(line):
            continue
        cells = split_line(line, delimiter or " ")
        numbers = [cell.strip() == "" or is_number(cell) for cell in cells]
        if not rows and not header_seen and not any(is_number(cell) for cell in cells):
            header_seen = True  # column names: no number in the first line
            continue
        if not all(numbers):
            bad = next(cell for cell, ok in zip(cells, numbers) if not ok)
            raise InputError(f"'{path}', line {number}: {bad.strip()!r} is not a number")
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise InputError(f"'{path}', line {number}: {len(cells)} values, but the first row has {width}")
        rows.append([float(cell) if cell.strip() else np.nan for cell in cells])
    if not rows:
        raise InputError(f"'{path}' is empty")
    return np.array(rows, dtype=np.float64)


def write_matrix(path, X_filled, *, kind):
    """Write a completed matrix (.txt, .csv or .npz) as the shell's ``>`` would (see :mod:`skgmmfill._output`)."""
    if kind == "npz":
        with open_output(path, binary=True) as stream:
            np.savez(stream, X=X_filled)
        return
    with open_output(path) as stream:
        np.savetxt(stream, X_filled, fmt="%.17g", delimiter="," if kind == "csv" else " ")


# -------------------------------------------------------------- subcommands


_PRESETS = {"none": {}, "ratings": PRESET_RATINGS, "course": PRESET_COURSE}


def _preset(args, ratings):
    """The preset named by ``--preset``, else the ratings preset on a rating file (one rule for every command)."""
    return args.preset or ("ratings" if ratings is not None else "none")


def _imputer_from(args, ratings=None):
    """The estimator the options describe; on a rating file (``ratings`` the
    CSR matrix) the ratings preset is the default, and imputed values are
    clipped to the observed rating range unless ``--min-value``/``--max-value``
    say otherwise."""
    params = dict(_PRESETS[_preset(args, ratings)])
    if args.n_components is not None:
        params["n_components"] = args.n_components
    if args.covariance_type is not None and args.covariance_type != params.get("covariance_type"):
        # a preset's options for its own family do not carry over to another
        for name in foreign_hyperparameters(params, args.covariance_type):
            del params[name]
        params["covariance_type"] = args.covariance_type
    for name in ("n_factors", "n_init", "max_iter", "biases"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    low, high = args.min_value, args.max_value
    if ratings is not None and ratings.nnz:
        low = ratings.data.min() if low is None else low
        high = ratings.data.max() if high is None else high
    return MaskedGaussianMixtureImputer(
        **params,
        min_value=-np.inf if low is None else low,
        max_value=np.inf if high is None else high,
        random_state=args.random_state,
        verbose=0 if args.quiet else 1,
    )


@contextlib.contextmanager
def _progress_to_stderr(quiet):
    """EM's progress lines go to stderr, so stdout stays for results."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if quiet else sys.stderr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield


def _say(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def _fit(args, imputer, X):
    """Fit, saying first what is fitted and refusing what cannot be (too many factors, too little memory)."""
    covariance_type = resolve_covariance_type(imputer.covariance_type, X.shape, sp.issparse(X), imputer.n_components)
    if covariance_type == "factor" and imputer.n_factors >= X.shape[1]:
        if args.n_factors is not None or X.shape[1] < 2:
            raise InputError(f"{imputer.n_factors} factors need more than {imputer.n_factors} columns, but the data "
                             f"have {X.shape[1]}: " + (f"give --n-factors {X.shape[1] - 1} or fewer" if X.shape[1] > 1
                                                       else "use --covariance-type diag"))
        _say(args, f"the {_preset(args, X)} preset's {imputer.n_factors} factors, capped at {X.shape[1] - 1} "
                   f"for {X.shape[1]} columns")
        imputer.set_params(n_factors=X.shape[1] - 1)
    needed, available = _fit_bytes(imputer, covariance_type, X), _available_bytes()
    what = (f"{imputer.n_components} {covariance_type} component(s)"
            + (f" of {imputer.n_factors} factors" if covariance_type == "factor" else "")
            + (" with user and item biases" if imputer.biases else ""))
    if available is not None and needed > available:
        raise InputError(f"fitting {what} on {X.shape[0]:,} x {X.shape[1]:,} needs about {needed / 2**30:.1f} GiB, "
                         f"more than the {available / 2**30:.1f} GiB of memory available: lower -k"
                         + (" or --n-factors" if covariance_type == "factor" else "")
                         + (", or use --covariance-type diag" if covariance_type == "full" else ""))
    _say(args, f"fitting {what} on {X.shape[0]:,} x {X.shape[1]:,} ({_n_observed(X):,} observed entries; "
               f"about {needed / 2**30:.2g} GiB)")
    tic = time.perf_counter()
    with _progress_to_stderr(args.quiet):
        imputer.fit(X)
    _say(args, f"fitted in {time.perf_counter() - tic:.1f} s ({imputer.n_iter_} iterations)")
    return imputer


def complete_command(args):
    kind = _kind(args.input, args.triplets)
    output = args.output.lower()
    if args.output == "-":  # standard output, in the input's format
        wrong = False
    elif kind == "triplets":
        wrong = output.endswith((".npz", ".txt")) or _strip_compression(output) != output
    else:
        wrong = _strip_compression(output) != output or _kind(args.output, False) != kind
    if wrong:
        raise InputError(f"'{args.output}': the output is written in the input's format, "
                         f"so it must be a .{'csv' if kind == 'triplets' else kind} file")
    check_output(args.output)
    X, labels = read_matrix(args.input, triplets=args.triplets, missing_values=args.missing_values,
                            **_rating_options(args))
    imputer = _fit(args, _imputer_from(args, X if kind == "triplets" else None).set_params(keep_empty_features=True), X)
    if kind == "triplets":
        _write_completed_ratings(args.output, imputer, X, labels, everything=args.all)
    else:
        write_matrix(args.output, imputer.transform(X), kind=kind)
    _say(args, f"wrote {args.output}")


def _write_completed_ratings(path, imputer, X, labels, everything):
    """``user,item,rating,observed`` lines: the imputed entries (``observed``
    0), and with ``everything`` the observed ones too (1), row block by row
    block, so that no dense users x items array is formed."""
    users, items = labels
    rows_per_block = BATCH_ENTRIES // X.shape[1]
    with open_output(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(["user", "item", "rating", "observed"])
        for batch in row_batches(X.shape[0], rows_per_block):
            start = batch.start
            block = sp.csr_array(X[batch])
            observed = np.zeros(block.shape, dtype=bool)  # stored = rated, a rating of 0 included
            observed[rows_of_entries(block), block.indices] = True
            rows, cols = np.nonzero(np.ones_like(observed) if everything else ~observed)
            values = imputer.predict_entries(X, rows + start, cols)
            for r, c, value, seen in zip(rows + start, cols, values, observed[rows, cols]):
                writer.writerow([users[r], items[c], repr(float(value)), int(seen)])


def _fit_bytes(imputer, covariance_type, X):
    """A rough upper estimate of a fit's memory: copies of the data, per-row work arrays, parameters."""
    n, d, K = X.shape[0], X.shape[1], imputer.n_components
    q = imputer.n_factors if covariance_type == "factor" else 0
    data = 4 * 8 * (X.nnz if sp.issparse(X) else n * d)  # standardised values, mask, residuals, temporaries
    per_row = 8 * n * K * (8 + 2 * q + q * q)  # log-densities, responsibilities, factor posteriors
    per_component = 8 * K * d * {"full": 4 * d, "factor": 4 * q + 4}.get(covariance_type, 4)
    return data + per_row + per_component


def _available_bytes():
    """Memory available to a new allocation (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _n_observed(X):
    return X.nnz if sp.issparse(X) else int((~np.isnan(X)).sum())


def _rating_options(args):
    columns = tuple(int(c) if c.isdigit() else c for c in args.columns)
    return {"sep": args.sep, "columns": columns, "duplicates": args.duplicates, "verbose": not args.quiet}


def choose_k_command(args):
    X, labels = read_matrix(args.input, triplets=args.triplets, missing_values=args.missing_values,
                            **_rating_options(args))
    base = _imputer_from(args, X if labels is not None else None).set_params(keep_empty_features=True)
    scorer = make_masked_rmse_scorer(fraction=args.fraction, random_state=0)
    print(f"{'K':>4} {'BIC':>16} {'CV RMSE':>10}")
    bics, cv_rmses = {}, {}
    for n_components in args.n_components_list:
        imputer = base.set_params(n_components=n_components)
        with _progress_to_stderr(args.quiet):
            bics[n_components] = imputer.fit(X).bic(X)
            scores = cross_val_score(imputer, X, scoring=scorer, error_score="raise",
                                     cv=KFold(args.cv, shuffle=True, random_state=0))
        cv_rmses[n_components] = -scores.mean()
        print(f"{n_components:>4} {bics[n_components]:>16.2f} {cv_rmses[n_components]:>10.5f}",
              flush=True)
    print(f"best K by BIC: {min(bics, key=bics.get)}; "
          f"by cross-validated masked RMSE: {min(cv_rmses, key=cv_rmses.get)}")


# ---------------------------------------------------------- rating commands

def _ratings_and_model(args, more_items=()):
    """The ratings of ``args.ratings`` and an imputer fitted to them, or the
    one saved in ``--model`` with the ratings put in its item columns.

    When fitting, ``more_items`` that nobody rated become empty columns of the
    model, which predicts them from the offsets (see ``keep_empty_features``).
    """
    if args.model is not None:
        given = [option for option, name in _MODEL_OPTIONS.items() if getattr(args, name) is not None]
        if given:
            raise InputError(f"--model and {given[0]} cannot go together: a saved model is used as it was fitted "
                             f"(leave out {given[0]}, or --model to fit a new one)")
    if args.save is not None:
        check_output(args.save)
    X, (users, items) = read_matrix(args.ratings, triplets=True, **_rating_options(args))
    if args.model is None:
        items = np.asarray(_joined(items, more_items)[0], dtype=str)
        X = _widened(X, X.shape[0], len(items))
        imputer = _fit(args, _imputer_from(args, X).set_params(keep_empty_features=True), X)
        if args.save is not None:
            save_model(imputer, args.save, feature_ids=items)
        return X, users, items, imputer
    imputer, model_items = load_model(args.model, return_feature_ids=True)
    if model_items is None:
        raise InputError(f"'{args.model}' holds a model without item ids; save it with --save")
    model_items = list(model_items)
    column = {item: index for index, item in enumerate(model_items)}
    unknown = [item for item in items if item not in column]
    if unknown:
        raise InputError(f"'{args.ratings}' rates {len(unknown)} item(s) the model in '{args.model}' was not "
                         f"fitted on (e.g. {', '.join(unknown[:3])}); refit without --model")
    X = sp.csr_array((X.data, np.array([column[i] for i in items])[X.indices], X.indptr),
                     shape=(X.shape[0], len(model_items)))
    X.sort_indices()
    _say(args, f"model from '{args.model}': {len(model_items):,} items, no refitting")
    return X, users, model_items, imputer


_MODEL_OPTIONS = {"--save": "save", "-k": "n_components", "--preset": "preset", "--covariance-type": "covariance_type",
                  "--n-factors": "n_factors", "--n-init": "n_init", "--max-iter": "max_iter", "--biases": "biases"}
"""Options that describe a fit, meaningless with ``--model``."""


def recommend_command(args):
    check_output(args.output)
    X, users, items, imputer = _ratings_and_model(args)
    n = min(args.n, X.shape[1])
    columns = imputer.recommend(X, n=n, rank_by=args.rank_by)
    rows = np.repeat(np.arange(X.shape[0]), n)
    cols = columns.ravel()
    ranks = np.tile(np.arange(1, n + 1), X.shape[0])
    kept = cols >= 0  # -1: the user has fewer than n unrated items
    rows, cols, ranks = rows[kept], cols[kept], ranks[kept]
    scores = imputer.predict_entries(X, rows, cols)
    titles = _titles(args)
    with open_output(args.output) as stream:
        writer = csv.writer(stream)
        writer.writerow(["user", "item", *(["title"] if titles else []), "score", "rank"])
        for r, c, score, rank in zip(rows, cols, scores, ranks):
            writer.writerow([users[r], items[c], *([titles.get(items[c], "")] if titles else []), f"{score:.6g}",
                             rank])
    _say(args, f"wrote {int(kept.sum()):,} recommendations for {X.shape[0]:,} users to {args.output}")


def predict_command(args):
    check_output(args.output)
    pair_users, pair_items, extra, extra_names = _read_pairs(args.pairs, args.sep)
    X, users, items, imputer = _ratings_and_model(args, more_items=pair_items)
    column = {item: index for index, item in enumerate(items)}
    unknown = sorted({item for item in pair_items if item not in column})
    if unknown:
        raise InputError(f"'{args.pairs}': {len(unknown)} item(s) the model in '{args.model}' was not fitted on "
                         f"(e.g. {', '.join(unknown[:3])}); refit without --model to predict them from the "
                         "offsets")
    user_ids, rows = _joined(users, pair_users)
    new_users = len(user_ids) - len(users)  # users without ratings: predicted from the population
    X = _widened(X, len(user_ids), X.shape[1])
    cols = np.array([column[item] for item in pair_items], dtype=np.intp)
    predictions = imputer.predict_entries(X, rows, cols)
    titles = _titles(args)
    with open_output(args.output) as stream:
        writer = csv.writer(stream)
        writer.writerow(["user", "item", *(["title"] if titles else []), *extra_names, "prediction"])
        for user, item, more, value in zip(pair_users, pair_items, extra, predictions):
            writer.writerow([user, item, *([titles.get(item, "")] if titles else []), *more, f"{value:.6g}"])
    unrated = int(np.count_nonzero(np.bincount(X.indices, minlength=X.shape[1])[cols] == 0))
    notes = [f"{new_users} user(s) without ratings"] if new_users else []
    if unrated:
        notes.append(f"{unrated:,} prediction(s) of items without ratings, "
                     + ("from the user's and the global offsets" if imputer.biases else "0 without --biases"))
    _say(args, f"wrote {len(rows):,} predictions to {args.output}" + (f" ({'; '.join(notes)})" if notes else ""))


def _titles(args):
    """``{item id: title}`` of ``--items``, or None."""
    if args.items is None:
        return None
    try:
        return dict(zip(*read_items(args.items)))
    except SeparatorNotFound as error:
        raise InputError(f"{error.problem}; check that --items names an item file (id, title per line)") from error
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read '{args.items}': {error.strerror if isinstance(error, OSError) else error}") \
            from error


def _read_pairs(path, sep):
    """The user and item of each line of a pairs file, its further fields as written, and their names.

    A first line starting with "user" is a header naming the fields; without
    one, a third field is named "rating" (as in a test file of ratings) and
    further ones ``field4``, ``field5``...
    """
    try:
        lines = [line for line in text_lines(path) if is_data_line(line)]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise InputError(f"cannot read '{path}': {error}") from error
    if not lines:
        raise InputError(f"'{path}' is empty")
    separator = sep or sniff_separator(lines, 2)
    if separator is None:
        raise InputError(f"'{path}': cannot tell how the fields are separated; give --sep")
    names = None
    if lines[0].strip().lower().startswith("user"):
        names = [field.strip() for field in split_line(lines[0], separator)][2:]
        lines = lines[1:]
    users, items, extra = [], [], []
    for number, line in enumerate(lines, start=1):
        fields = [field.strip() for field in split_line(line, separator)]
        if len(fields) < 2:
            raise InputError(f"'{path}', line {number}: expected user and item")
        users.append(fields[0])
        items.append(fields[1])
        extra.append(fields[2:])
    width = max(map(len, extra))
    extra = [more + [""] * (width - len(more)) for more in extra]
    if names is None or len(names) != width:
        names = ["rating", *(f"field{k}" for k in range(4, width + 3))][:width]
    return users, items, extra, names


def evaluate_command(args):
    folds, plan = _evaluation_folds(args)
    relevant = args.relevant
    if relevant is None:  # the mean training rating
        relevant = float(np.mean(np.concatenate([train.data for train, _ in folds])))
    k = args.top
    preset = _preset(args, folds[0][0])
    names = ["skgmmfill (" + (preset if preset != "none" else "options") + ")", "user + item biases",
             "item means"]
    if args.rank_by != "rating":
        names = [f"{name}, by {args.rank_by}" for name in names]
    results = {name: [] for name in [*names, "item popularity"]}
    new_users = new_items = 0
    for number, (train, (test_rows, test_cols, test_values)) in enumerate(folds, start=1):
        # users and items without training ratings are predicted from the offsets, and counted
        unrated_user = np.diff(train.indptr)[test_rows] == 0
        unrated_item = np.bincount(train.indices, minlength=train.shape[1])[test_cols] == 0
        new_users += int(unrated_user.sum())
        new_items += int(unrated_item.sum())
        low, high = train.data.min(), train.data.max()
        liked = test_values >= relevant

        def top_n(top):
            return [metric(top, test_rows[liked], test_cols[liked], top.shape[1])
                    for metric in (precision_at_k, recall_at_k, ndcg_at_k)]

        models = {
            names[0]: _imputer_from(args, train),
            names[1]: MaskedGaussianMixtureImputer(biases=True, covariance_type="diag", mean_precision_prior=1e4,
                                                   min_value=low, max_value=high),
            names[2]: MaskedGaussianMixtureImputer(covariance_type="diag", min_value=low, max_value=high),
        }
        _say(args, f"fold {number}/{len(folds)}: {train.nnz:,} training ratings of {train.shape[0]:,} users on "
                   f"{train.shape[1]:,} items, {len(test_values):,} test ratings")
        for name, imputer in models.items():
            _say(args, f"fold {number}/{len(folds)}: {name}")
            with _progress_to_stderr(True):
                imputer.set_params(keep_empty_features=True).fit(train)
            errors = imputer.predict_entries(train, test_rows, test_cols) - test_values
            top = imputer.recommend(train, n=min(k, train.shape[1]), rank_by=args.rank_by, **(
                {"relevant_above": relevant} if args.rank_by == "hits" else {}))
            results[name].append((
                np.sqrt(np.mean(errors**2)), np.mean(np.abs(errors)), *top_n(top),
                np.sqrt(np.mean(errors[unrated_item] ** 2)) if unrated_item.any() else np.nan,
            ))
        results["item popularity"].append((np.nan, np.nan, *top_n(_most_rated(train, k)), np.nan))
    print(f"{plan}; top-{k} metrics count test ratings >= {relevant:.3g} as relevant")
    print(f"every test rating is scored, {new_users:,} of them by users and {new_items:,} on items without "
          "training ratings (predicted from the offsets)" + (", over the folds" if len(folds) > 1 else ""))
    columns = ["RMSE", "MAE", f"prec@{k}", f"recall@{k}", f"NDCG@{k}", "RMSE new items"]
    width = 2 + max(16 if len(folds) > 1 else 6, *map(len, columns))
    print(f"{'model':<28}" + "".join(f"{c:>{width}}" for c in columns))
    for name, per_fold in results.items():
        per_fold = np.array(per_fold)
        cells = []
        for mean, spread, values in zip(np.mean(per_fold, axis=0), np.std(per_fold, axis=0), per_fold.T):
            if np.isnan(values).all():
                cells.append("-")
            else:
                cells.append(f"{mean:.4f}" + (f" +- {spread:.4f}" if len(folds) > 1 else ""))
        print(f"{name:<28}" + "".join(f"{cell:>{width}}" for cell in cells))
    if len(folds) > 1:
        print(f"(mean +- standard deviation over the {len(folds)} folds)")


def _most_rated(train, k):
    """Each user's ``k`` most rated items among those they have not rated, in blocks of users."""
    counts = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    k = min(k, train.shape[1])
    top = np.empty((train.shape[0], k), dtype=np.intp)
    for batch in row_batches(train.shape[0], BATCH_ENTRIES // train.shape[1]):
        rated = train[batch]
        scores = np.tile(counts, (rated.shape[0], 1))
        scores[rows_of_entries(rated), rated.indices] = -np.inf
        top[batch] = best_columns(scores, k)
    return top


def _evaluation_folds(args):
    """The (training matrix, (rows, columns, ratings) of the test ratings) of each fold, and the plan's name.

    From given files (``--test``, ``--folds-files``): the matrix has a row for
    every user and a column for every item of either file, the training file's
    first. Else ratings of ``RATINGS`` are held out at random.
    """
    options = _rating_options(args)
    if args.folds_files:
        pairs = []
        for number in range(1, 1000):
            train_path, test_path = (pattern.replace("%d", str(number)) for pattern in args.folds_files)
            if not os.path.exists(train_path) and not os.path.exists(test_path):
                break
            pairs.append((train_path, test_path))
        if not pairs:
            raise InputError(f"no fold files: '{args.folds_files[0].replace('%d', '1')}' is not there")
        return [_train_and_test(train, test, options) for train, test in pairs], \
            f"{len(pairs)} folds from {args.folds_files[0]} and {args.folds_files[1]}"
    if args.ratings is None:
        raise InputError("give RATINGS, or --folds-files TRAIN TEST")
    if args.test is not None:
        return [_train_and_test(args.ratings, args.test, options)], f"trained on {args.ratings}, tested on {args.test}"
    X, _ = read_matrix(args.ratings, triplets=True, **options)
    rng = np.random.RandomState(args.random_state)
    if args.folds:
        fold = rng.randint(args.folds, size=X.nnz)
        splits = [fold == k for k in range(args.folds)]
        plan = f"{args.folds}-fold cross-validation over the ratings"
    else:
        splits = [rng.uniform(size=X.nnz) < args.test_size]
        plan = f"{args.test_size:g} of the ratings held out"
    entry_rows = rows_of_entries(X)
    folds = []
    for held_out in splits:
        train = sp.csr_array((X.data[~held_out], (entry_rows[~held_out], X.indices[~held_out])), shape=X.shape)
        folds.append((train, (entry_rows[held_out], X.indices[held_out], X.data[held_out])))
    return folds, plan


def _train_and_test(train_path, test_path, options):
    """A training file's matrix, widened to the users and items of a test file, and the test ratings in it."""
    X, (users, items) = read_matrix(train_path, triplets=True, **options)
    T, (test_users, test_items) = read_matrix(test_path, triplets=True, **options)
    user_ids, rows = _joined(users, test_users)
    item_ids, cols = _joined(items, test_items)
    train = _widened(X, len(user_ids), len(item_ids))
    test_rows = rows[rows_of_entries(T)]
    return train, (test_rows, cols[T.indices], T.data)


def _widened(X, n_rows, n_cols):
    """``X`` (CSR) with empty rows and columns added after its own, sharing its arrays."""
    indptr = np.concatenate([X.indptr, np.full(n_rows - X.shape[0], X.indptr[-1], dtype=X.indptr.dtype)])
    return sp.csr_array((X.data, X.indices, indptr), shape=(n_rows, n_cols))


def _joined(ids, more):
    """``ids`` followed by those of ``more`` not among them, and the position of each of ``more`` in that."""
    position = {value: index for index, value in enumerate(ids)}
    for value in more:
        position.setdefault(value, len(position))
    return list(position), np.array([position[value] for value in more], dtype=np.intp)


COMMANDS = {
    "complete": complete_command,
    "choose-k": choose_k_command,
    "recommend": recommend_command,
    "predict": predict_command,
    "evaluate": evaluate_command,
}
