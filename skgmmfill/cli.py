"""The ``skgmmfill`` command.

``skgmmfill`` (or ``skgmmfill course``) reproduces the course experiment on the
bundled Netflix data; ``skgmmfill complete`` fills in a user's matrix file;
``skgmmfill choose-k`` compares numbers of components by BIC and by
cross-validated masked RMSE; ``recommend``, ``predict`` and ``evaluate`` serve
rating files (MovieLens' formats and CSV exports). Every subcommand has
``--help``; results go to files or stdout, progress to stderr.
"""

import argparse
import os
import sys

from . import __version__

PRESETS = ("none", "ratings", "course")
"""``--preset``'s choices: no preset, ``PRESET_RATINGS``, ``PRESET_COURSE``."""


def __getattr__(name):
    """``COVARIANCE_TYPES``, ``--covariance-type``'s choices: "auto" and the names in the family
    registry, read when asked for (``--help`` and ``--version`` import no numpy)."""
    if name == "COVARIANCE_TYPES":
        from ._families import FAMILIES

        return ("auto", *FAMILIES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _covariance_type(value):
    """``--covariance-type``'s value, checked against the registry when given."""
    choices = __getattr__("COVARIANCE_TYPES")
    if value not in choices:
        raise argparse.ArgumentTypeError(f"invalid choice: {value!r} (choose from {', '.join(choices)})")
    return value


def _add_model_options(parser, ratings=False):
    if not ratings:
        parser.add_argument("--triplets", action="store_true",
                            help="the input is a file of user, item, rating lines (also assumed for "
                            ".data, .dat and .tsv files)")
        parser.add_argument("--missing-values", type=float, default=float("nan"), metavar="VALUE",
                            help="marker of missing entries in .txt/.csv/.npz matrices "
                            "(default: empty cells or nan; the course files use 0)")
    parser.add_argument("--sep", help="field separator of a ratings file (default: detected among tab, '::', "
                        "comma, semicolon and spaces)")
    parser.add_argument("--columns", nargs=3, default=["0", "1", "2"], metavar=("USER", "ITEM", "RATING"),
                        help="fields of a ratings file holding user, item and rating: positions from 0 or "
                        "header names (default: 0 1 2; further fields such as timestamps are ignored)")
    parser.add_argument("--duplicates", choices=["error", "mean"], default="error",
                        help="a (user, item) pair rated twice: an error naming the lines (default), "
                        "or the mean")
    parser.add_argument("--covariance-type", type=_covariance_type, metavar="TYPE",
                        help="'auto' or a covariance family: spherical, diag, full, factor, or one registered "
                        "(default: the preset's)")
    parser.add_argument("--n-factors", type=int, metavar="Q", help="factors of covariance type 'factor'")
    parser.add_argument("--n-init", type=int, metavar="N", help="initialisations (default: 1)")
    parser.add_argument("--max-iter", type=int, metavar="N",
                        help="EM iterations at most (default: the preset's, else 100)")
    parser.add_argument("--biases", action=argparse.BooleanOptionalAction, default=None,
                        help="user and item offsets under the mixture (default: the preset's)")
    parser.add_argument("--preset", choices=PRESETS, default=None,
                        help="'ratings': skgmmfill.PRESET_RATINGS (biases, a shrunk factor component); "
                        "'course': skgmmfill.PRESET_COURSE (the course's model); 'none': the estimator's defaults "
                        "(default: 'ratings' for a rating file, else 'none')")
    parser.add_argument("--min-value", type=float, default=None,
                        help="clip imputed values below" + (" (default: the lowest rating)" if ratings else ""))
    parser.add_argument("--max-value", type=float, default=None,
                        help="clip imputed values above" + (" (default: the highest rating)" if ratings else ""))
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def _parser():
    parser = argparse.ArgumentParser(
        prog="skgmmfill",
        description="Fill in missing entries with a Gaussian mixture fitted on the observed "
        "entries. With no subcommand, reproduce the course experiment.",
    )
    parser.add_argument("--version", action="version", version=f"skgmmfill {__version__}")
    commands = parser.add_subparsers(dest="command",
                                     metavar="{course,complete,choose-k,recommend,predict,evaluate}")

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
        "filled to OUTPUT ('-' for stdout), in the same format (.txt, .csv, .npz; or, for a "
        "file of user, item, rating lines, user,item,rating,observed lines: the imputed "
        "entries, or every entry with --all). Observed entries are written unchanged.",
    )
    complete.add_argument("input", metavar="INPUT")
    complete.add_argument("output", metavar="OUTPUT")
    complete.add_argument("-k", "--n-components", type=int, default=None, metavar="K",
                          help="number of components (default: 1, or the preset's)")
    complete.add_argument("--all", action="store_true",
                          help="ratings files: write the observed entries too (observed=1)")
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

    ratings_help = ("RATINGS: one user, item, rating per line (MovieLens' u.data and ratings.dat, CSV "
                    "with or without a header; .gz, .bz2 and .zip are read as they are)")
    recommend = commands.add_parser(
        "recommend", help="the top N unrated items of every user",
        description="Fit on RATINGS (or use --model) and write OUT ('-' for stdout) as "
        "user,item,score,rank lines: each user's N best items among those they have not "
        "rated (score: the predicted rating), by --rank-by. " + ratings_help,
    )
    recommend.add_argument("ratings", metavar="RATINGS")
    recommend.add_argument("output", metavar="OUT")
    recommend.add_argument("-n", type=int, default=10, help="items per user (default: 10)")
    predict = commands.add_parser(
        "predict", help="predicted ratings of given (user, item) pairs",
        description="Fit on RATINGS (or use --model) and write, for each user, item line of "
        "PAIRS, user,item,prediction to OUT ('-' for stdout), further fields of PAIRS kept before the "
        "prediction (user item rating in, user,item,rating,prediction out): the posterior mean rating (the "
        "rating itself where the user rated the item; for a user without ratings, the "
        "population's; for an item nobody rated, the global mean plus the user's offset, "
        "counted on stderr). " + ratings_help,
    )
    predict.add_argument("ratings", metavar="RATINGS")
    predict.add_argument("pairs", metavar="PAIRS")
    predict.add_argument("output", metavar="OUT")
    for command in (recommend, predict):
        command.add_argument("-k", "--n-components", type=int, default=None, metavar="K",
                             help="number of components (default: the preset's)")
        command.add_argument("--save", metavar="MODEL", help="save the fitted model to MODEL")
        command.add_argument("--items", metavar="ITEMS",
                             help="an item file (MovieLens' u.item, movies.dat or movies.csv: id, title, ...) whose "
                             "titles are added as a column after the item")
        command.add_argument("--model", metavar="MODEL",
                             help="use the model saved in MODEL instead of fitting (RATINGS then holds the "
                             "users to score, on the model's items)")
        _add_model_options(command, ratings=True)
    evaluate = commands.add_parser(
        "evaluate", help="RMSE, MAE and top-N metrics on test ratings, against baselines",
        description="Fit on training ratings and print RMSE and MAE of the test ratings and precision, "
        "recall and NDCG of each user's top-N recommendations, for this model, the bias model, item "
        "means and (top-N only) item popularity. The test ratings are given (--test, or --folds-files for "
        "several folds, as MovieLens' "
        "u1.base/u1.test ... u5) or held out of RATINGS (--test-size, or --folds for cross-validation). "
        "Every test rating is scored: users and items without training ratings are predicted from the "
        "offsets, and counted. " + ratings_help,
    )
    evaluate.add_argument("ratings", metavar="RATINGS", nargs="?",
                          help="the training ratings (not with --folds-files)")
    held_out = evaluate.add_mutually_exclusive_group()
    held_out.add_argument("--test", metavar="TEST", help="a file of test ratings (same format)")
    held_out.add_argument("--folds-files", nargs=2, metavar=("TRAIN", "TEST"),
                          help="the files of each fold, %%d standing for 1, 2, ... as long as they exist "
                          "(e.g. 'u%%d.base' 'u%%d.test')")
    held_out.add_argument("--test-size", type=float, default=0.2,
                          help="fraction of RATINGS held out at random (default: 0.2)")
    held_out.add_argument("--folds", type=int, help="cross-validate over this many random folds of RATINGS")
    evaluate.add_argument("--top", type=int, default=10, metavar="N", help="N of the top-N metrics (default: 10)")
    evaluate.add_argument("--relevant", type=float, default=None, metavar="RATING",
                          help="test ratings at least this are relevant (default: the mean training rating)")
    evaluate.add_argument("-k", "--n-components", type=int, default=None, metavar="K",
                          help="number of components (default: the preset's)")
    for command in (recommend, evaluate):
        command.add_argument("--rank-by", choices=("rating", "hits"), default="rating",
                             help="rating: the highest predicted ratings, less the uncertainty of an item's mean "
                             "(1.96 standard errors: few ratings, more caution); hits: the items the user is likeliest "
                             "both to rate (an item's chance grows with its number of ratings) and to rate at "
                             "least the mean rating (--relevant for evaluate), what top-N metrics count "
                             "(default: rating)")
    _add_model_options(evaluate, ratings=True)
    return parser



def main(argv=None):
    """Entry point of the ``skgmmfill`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # --version and --help end here, before the libraries are imported
    from ._commands import COMMANDS, InputError, course_experiment

    command = args.command or "course"
    try:
        if command == "course":
            n_components = getattr(args, "n_components", [1, 12])
            seeds = getattr(args, "seeds", list(range(5)))
            if min(n_components) < 1 or min(seeds) < 0:
                raise InputError("--n-components must be positive and --seeds non-negative")
            course_experiment(n_components, seeds)
        else:
            COMMANDS[command](args)
    except BrokenPipeError:  # the reader of stdout stopped early (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (InputError, ValueError, OSError) as error:
        print(f"skgmmfill {command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2
    except MemoryError:  # after reading (parsing, fitting): one line naming the input, not a traceback
        inputs = " and ".join(f"'{getattr(args, name)}'" for name in ("input", "ratings") if getattr(args, name, None))
        print(f"skgmmfill {command}: error: out of memory working on {inputs or 'the bundled data'}", file=sys.stderr)
        return 2
    return 0
