"""The ``skgmmfill`` command.

``skgmmfill`` (or ``skgmmfill course``) reproduces the course experiment on the
bundled Netflix data; ``skgmmfill complete`` fills in a user's matrix file;
``skgmmfill choose-k`` compares numbers of components by BIC and by
cross-validated masked RMSE. Every subcommand has ``--help``.
"""

import argparse
import contextlib
import csv
import gzip
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, cross_val_score

from . import PRESET_COURSE, PRESET_RATINGS, MaskedGaussianMixtureImputer
from ._imputer import FAMILIES
from .datasets import load_netflix
from .metrics import make_masked_rmse_scorer, rmse

# Largest matrix written out in full from a triplet file (entries).
MAX_TRIPLET_OUTPUT = 10_000_000


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


def _kind(path, triplets):
    name = path.lower().removesuffix(".gz")
    if triplets:
        return "triplets"
    for extension in ("txt", "csv", "npz"):
        if name.endswith("." + extension):
            return extension
    raise InputError(f"'{path}': unknown file type; use .txt, .csv or .npz (or --triplets)")


def read_matrix(path, *, triplets=False, missing_values=np.nan):
    """Read a matrix file.

    Returns
    -------
    X : ndarray or scipy.sparse.csr_array
        Dense with NaN at missing entries, or sparse (stored = observed).
    labels : tuple of (row_labels, column_labels) or None
        For triplet files, the user and item labels of the rows and columns.
    """
    kind = _kind(path, triplets)
    try:
        if kind == "npz":
            with np.load(path, allow_pickle=False) as arrays:
                if "format" in arrays and "indptr" in arrays:
                    return sp.csr_array(sp.load_npz(path)), None
                if "X" not in arrays:
                    raise InputError(f"'{path}': an .npz file needs an array named 'X' "
                                     "or a sparse matrix saved with scipy.sparse.save_npz")
                X = np.asarray(arrays["X"], dtype=np.float64)
        elif kind == "triplets":
            return _read_triplets(path)
        else:
            X = _read_dense_text(path, "," if kind == "csv" else None)
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as error:
        raise InputError(f"cannot read '{path}': {str(error).splitlines()[0]}") from error
    if X.ndim != 2 or X.size == 0:
        raise InputError(f"'{path}': expected a non-empty 2-D matrix, got shape {X.shape}")
    if not np.isnan(missing_values):
        if np.isnan(X).any():
            raise InputError(f"'{path}': has empty or non-numeric cells, but the missing "
                             f"entries are marked by {missing_values:g}")
        X = np.where(X == missing_values, np.nan, X)
    return X, None


def _read_dense_text(path, delimiter):
    """A matrix from text: one row a line; empty or ``nan`` cells are missing."""
    rows = []
    with (gzip.open if path.endswith(".gz") else open)(path, "rt") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cells = line.rstrip("\r\n").split(delimiter) if delimiter else line.split()
            try:
                rows.append([float(cell) if cell.strip() else np.nan for cell in cells])
            except ValueError:
                bad = next(cell for cell in cells if cell.strip() and not _is_number(cell))
                raise InputError(f"'{path}', line {number}: {bad.strip()!r} is not a number") from None
            if len(rows[-1]) != len(rows[0]):
                raise InputError(f"'{path}', line {number}: {len(rows[-1])} values, "
                                 f"but the first row has {len(rows[0])}")
    if not rows:
        raise InputError(f"'{path}' is empty")
    return np.array(rows, dtype=np.float64)


def _read_triplets(path):
    users, items, ratings = [], [], []
    with open(path, newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or (number == 1 and not _is_number(row[-1])):
                continue  # blank line or header
            if len(row) != 3:
                raise InputError(f"'{path}', line {number}: expected user,item,rating, got {len(row)} fields")
            if not _is_number(row[2]):
                raise InputError(f"'{path}', line {number}: rating {row[2]!r} is not a number")
            users.append(row[0].strip())
            items.append(row[1].strip())
            ratings.append(float(row[2]))
    if not ratings:
        raise InputError(f"'{path}': no user,item,rating lines")
    user_labels, rows = np.unique(users, return_inverse=True)
    item_labels, cols = np.unique(items, return_inverse=True)
    X = sp.coo_array((ratings, (rows, cols)), shape=(len(user_labels), len(item_labels))).tocsr()
    if X.nnz != len(ratings):
        raise InputError(f"'{path}': some (user, item) pairs are given more than once")
    return X, (user_labels, item_labels)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def write_matrix(path, X_filled, *, kind, labels=None):
    """Write the completed matrix atomically: nothing is left behind on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    suffix = ".npz" if kind == "npz" else ".tmp"
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".skgmmfill-", suffix=suffix)
    except OSError as error:
        raise InputError(f"cannot write '{path}': {error.strerror}") from error
    os.close(handle)
    try:
        if kind == "npz":
            np.savez(temporary, X=X_filled)
        elif kind == "triplets":
            user_labels, item_labels = labels
            with open(temporary, "w", newline="") as f:
                writer = csv.writer(f)
                writer.writerow(["user", "item", "rating"])
                for u, user in enumerate(user_labels):
                    for i, item in enumerate(item_labels):
                        writer.writerow([user, item, repr(float(X_filled[u, i]))])
        else:
            np.savetxt(temporary, X_filled, fmt="%.17g", delimiter="," if kind == "csv" else " ")
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


# -------------------------------------------------------------- subcommands


_PRESETS = {"none": {}, "ratings": PRESET_RATINGS, "course": PRESET_COURSE}


def _imputer_from(args):
    params = dict(_PRESETS[args.preset])
    if args.n_components is not None:
        params["n_components"] = args.n_components
    if args.covariance_type is not None and args.covariance_type != params.get("covariance_type"):
        # a preset's options for its own family do not carry over to another
        family = FAMILIES.get(args.covariance_type)
        for name in {name for other in FAMILIES.values() for name in other.exclusive_hyperparameters}:
            if family is None or name not in family.hyperparameters:
                params.pop(name, None)
        params["covariance_type"] = args.covariance_type
    if args.n_factors is not None:
        params["n_factors"] = args.n_factors
    return MaskedGaussianMixtureImputer(
        **params,
        min_value=args.min_value,
        max_value=args.max_value,
        random_state=args.random_state,
        verbose=0 if args.quiet else 2,
    )


@contextlib.contextmanager
def _progress_to_stderr(quiet):
    """EM's progress lines go to stderr, so stdout stays for results."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull if quiet else sys.stderr):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield


def complete_command(args):
    kind = _kind(args.input, args.triplets)
    if _kind(args.output, args.triplets) != kind or args.output.lower().endswith(".gz"):
        raise InputError(f"'{args.output}': the output is written in the input's format, "
                         f"so it must be a .{'csv' if kind == 'triplets' else kind} file")
    X, labels = read_matrix(args.input, triplets=args.triplets, missing_values=args.missing_values)
    if kind == "triplets" and X.shape[0] * X.shape[1] > MAX_TRIPLET_OUTPUT:
        raise InputError(f"'{args.input}': the completed {X.shape[0]} x {X.shape[1]} matrix is too "
                         "large to write as triplets")
    imputer = _imputer_from(args).set_params(keep_empty_features=True)
    if not args.quiet:
        print(f"fitting {imputer.n_components} component(s) on {X.shape[0]} x {X.shape[1]} "
              f"({_n_observed(X):,} observed entries)", file=sys.stderr)
    with _progress_to_stderr(args.quiet):
        X_filled = imputer.fit_transform(X)
    write_matrix(args.output, X_filled, kind=kind, labels=labels)
    if not args.quiet:
        print(f"wrote {args.output}", file=sys.stderr)


def _n_observed(X):
    return X.nnz if sp.issparse(X) else int((~np.isnan(X)).sum())


def choose_k_command(args):
    X, _ = read_matrix(args.input, triplets=args.triplets, missing_values=args.missing_values)
    base = _imputer_from(args).set_params(keep_empty_features=True)
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


def _add_model_options(parser):
    parser.add_argument("--triplets", action="store_true",
                        help="the input is a CSV of user,item,rating lines (header optional)")
    parser.add_argument("--missing-values", type=float, default=np.nan, metavar="VALUE",
                        help="marker of missing entries in .txt/.csv/.npz matrices "
                        "(default: empty cells or nan; the course files use 0)")
    parser.add_argument("--covariance-type", choices=["auto", *FAMILIES])
    parser.add_argument("--n-factors", type=int, metavar="Q", help="factors of covariance type 'factor'")
    parser.add_argument("--preset", choices=list(_PRESETS), default="none",
                        help="'ratings': skgmmfill.PRESET_RATINGS (biases, a shrunk factor component); "
                        "'course': skgmmfill.PRESET_COURSE (the course's model)")
    parser.add_argument("--min-value", type=float, default=-np.inf, help="clip imputed values below")
    parser.add_argument("--max-value", type=float, default=np.inf, help="clip imputed values above")
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _parser():
    parser = argparse.ArgumentParser(
        prog="skgmmfill",
        description="Fill in missing entries with a Gaussian mixture fitted on the observed "
        "entries. With no subcommand, reproduce the course experiment.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{course,complete,choose-k}")

    course = commands.add_parser(
        "course", help="reproduce the course experiment on the bundled Netflix data (default)",
        description="EM on the observed entries of the bundled 1200 x 1200 Netflix matrix "
        "for each K and seed; fill the matrix with the best mixture and score it "
        "against the complete one.",
    )
    course.add_argument("-k", "--n-components", type=int, nargs="+", default=[1, 12],
                        metavar="K", help="numbers of components (default: 1 12)")
    course.add_argument("-s", "--seeds", type=int, nargs="+", default=list(range(5)),
                        metavar="SEED", help="random seeds (default: 0 1 2 3 4)")

    complete = commands.add_parser(
        "complete", help="fill in the missing entries of a matrix file",
        description="Fit the imputer to INPUT and write INPUT with its missing entries "
        "filled to OUTPUT, in the same format (.txt, .csv, .npz, or user,item,rating "
        "triplets with --triplets). Observed entries are written unchanged.",
    )
    complete.add_argument("input", metavar="INPUT")
    complete.add_argument("output", metavar="OUTPUT")
    complete.add_argument("-k", "--n-components", type=int, default=None, metavar="K",
                          help="number of components (default: 1, or the preset's)")
    _add_model_options(complete)

    choose = commands.add_parser(
        "choose-k", help="compare numbers of components by BIC and cross-validation",
        description="For each K, fit on all rows for the BIC, and cross-validate over rows "
        "with the masked-RMSE scorer (a fraction of each held-out row's observed entries "
        "is hidden and imputed).",
    )
    choose.add_argument("input", metavar="INPUT")
    choose.add_argument("-k", "--n-components", dest="n_components_list", type=int, nargs="+",
                        default=[1, 2, 4, 8], metavar="K", help="candidates (default: 1 2 4 8)")
    choose.add_argument("--cv", type=int, default=3, help="number of folds (default: 3)")
    choose.add_argument("--fraction", type=float, default=0.2,
                        help="fraction of observed entries hidden per row (default: 0.2)")
    choose.set_defaults(n_components=None)
    _add_model_options(choose)
    return parser


def main(argv=None):
    """Entry point of the ``skgmmfill`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "course"
    try:
        if command == "course":
            n_components = getattr(args, "n_components", [1, 12])
            seeds = getattr(args, "seeds", list(range(5)))
            if min(n_components) < 1 or min(seeds) < 0:
                raise InputError("--n-components must be positive and --seeds non-negative")
            course_experiment(n_components, seeds)
        elif command == "complete":
            complete_command(args)
        else:
            choose_k_command(args)
    except (InputError, ValueError, OSError) as error:
        print(f"skgmmfill {command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
