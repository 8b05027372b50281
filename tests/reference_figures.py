"""Reference figures of the course experiment, in one place (see REFERENCE.md).

Log-likelihoods are totals over rows (the estimator's ``lower_bound_ * n``).
"""

import gzip
import re
from pathlib import Path

import numpy as np

# Netflix, missing_values=0, best over seeds 0-4.
NETFLIX_BEST_LL = {1: -1521060.9539852478, 12: -1390234.4223469393}
NETFLIX_BEST_SEED_K12 = 1
NETFLIX_RMSE_K12 = 0.4804908505400684

# Netflix per seed (0-4): log-likelihood and number of E-steps.
NETFLIX_LL_PER_SEED = {
    1: [-1521060.9539852478] * 5,
    12: [
        -1399803.0466569131,
        -1390234.4223469393,
        -1416862.4011512795,
        -1393521.3929897752,
        -1416733.8083763556,
    ],
}
NETFLIX_ITERS_PER_SEED = {1: [3] * 5, 12: [23, 27, 15, 21, 16]}

# RMSE of the best K=12 fill over the missing entries whose true rating is known.
NETFLIX_RMSE_K12_MISSING_KNOWN = 0.9639486

# Tolerances (REFERENCE.md: summation order moves the last digits).
LL_RTOL = 1e-10
RMSE_ATOL = 1e-10

# Course test pair, K=4, seed 0.
COURSE_TEST_FIRST_ESTEP_LL = -152.16319226209848
COURSE_TEST_RUN_LL = -84.98451993042474
COURSE_TEST_RMSE = 0.3152301205749675
COURSE_TEST_N_ITER = 20
PRINTED_ATOL = 1e-8  # test_solutions.txt prints 8 significant digits

# Toy set (complete data), best over seeds 0-4 per K, and its course BIC.
TOY_BEST_LL = {1: -1307.2234, 2: -1175.7146, 3: -1138.8909, 4: -1138.6012}
TOY_BEST_SEED = {1: 0, 2: 2, 3: 0, 4: 4}
TOY_COURSE_BIC_K3 = -1169.2589347355092
TOY_FIRST_ESTEP_LL_K3 = -1388.0818000440693

_STAGES = ("Input:", "After first E-step:", "After first M-step:", "After a run")


def _parse_value(text):
    rows = re.findall(r"\[([^\[\]]+)\]", text)
    if not rows:
        return float(text)
    array = np.array([[float(v) for v in row.split()] for row in rows])
    return array if text.lstrip().startswith("[[") else array[0]


def load_course_solutions():
    """The course's expected values for the test pair (``tests/data/test_solutions.txt.gz``).

    Returns a dict ``{stage: {name: value}}`` with stages ``"Input:"``,
    ``"After first E-step:"``, ``"After first M-step:"`` and ``"After a run"``.
    """
    path = Path(__file__).parent / "data" / "test_solutions.txt.gz"
    text = gzip.decompress(path.read_bytes()).decode()
    pattern = "^(" + "|".join(re.escape(stage) for stage in _STAGES) + r")\s*$"
    parts = re.split(pattern, text, flags=re.MULTILINE)[1:]
    solutions = {}
    for stage, body in zip(parts[::2], parts[1::2]):
        entries = re.findall(r"^(\w+):(.*?)(?=^\w+:|\Z)", body, flags=re.MULTILINE | re.DOTALL)
        solutions[stage] = {name: _parse_value(value) for name, value in entries}
    return solutions
