"""Reading rating files as they come: MovieLens' ``u.data`` and ``ratings.dat``,
CSV exports with a header, compressed or not."""

import bz2
import csv
import gzip
import io
import re
import zipfile

import numpy as np
import scipy.sparse as sp

SEPARATORS = ("::", "\t", ",", ";", " ")
"""Tried in this order; ``" "`` stands for any run of whitespace."""

_SNIFF_LINES = 50


def open_text(path):
    """``path`` opened for reading text, decompressed by its suffix (.gz, .bz2, .zip).

    A .zip archive must hold one data file (its other members being
    directories or README-like text is fine only if exactly one member is
    not named ``README*``). Bytes that are not UTF-8 are read as Latin-1,
    as MovieLens' older files are.
    """
    name = str(path).lower()
    try:
        if name.endswith((".gz", ".bz2")):
            with (gzip.open if name.endswith(".gz") else bz2.open)(path, "rb") as f:
                raw = f.read()
        elif name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/") and "readme" not in m.lower()]
                if len(members) != 1:
                    raise ValueError(f"'{path}' holds {len(members)} data files ({', '.join(members[:5])}); "
                                     "extract the one to read")
                raw = archive.read(members[0])
        else:
            with open(path, "rb") as f:
                raw = f.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        return io.StringIO(text)
    except MemoryError:  # a file (or a small archive: a decompression bomb) larger than memory
        raise ValueError(f"'{path}' does not fit in memory once decompressed and read") from None


def sniff_separator(lines, min_fields):
    """The separator of :data:`SEPARATORS` that splits every sample line alike
    into at least ``min_fields`` fields, or None."""
    lines = [line for line in lines if line.strip()][:_SNIFF_LINES]
    for separator in SEPARATORS:
        counts = {len(split_line(line, separator)) for line in lines}
        if len(counts) == 1 and counts.pop() >= min_fields:
            return separator
    return None


def split_line(line, separator):
    line = line.rstrip("\r\n")
    if separator == " ":
        return line.split()
    if len(separator) == 1:
        return next(csv.reader([line], delimiter=separator))
    return line.split(separator)


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def natural_order(ids):
    """Sorted unique ids: numerically when all are integers ("2" before "10"),
    else by text with digit runs compared as numbers."""
    unique = sorted(set(ids))
    if all(re.fullmatch(r"[+-]?\d+", i) for i in unique):
        return np.array(sorted(unique, key=int), dtype=object)
    return np.array(
        sorted(unique, key=lambda i: [(0, int(part), "") if part.isdigit() else (1, 0, part)
                                      for part in re.split(r"(\d+)", i)]),
        dtype=object,
    )


def read_ratings(path, *, sep=None, columns=(0, 1, 2), duplicates="error"):
    """Read a rating file (one ``user, item, rating`` per line) into a sparse matrix.

    Parameters
    ----------
    path : str or path-like
        A text file, plain or compressed (``.gz``, ``.bz2``, or a ``.zip``
        holding one data file): MovieLens' ``u.data`` (tab-separated, with a
        timestamp), ``ratings.dat`` (``::``), CSV exports with a header line...
    sep : str or None, default=None
        The field separator; None detects it among tab, ``::``, comma,
        semicolon and whitespace (the one that splits every one of the first
        lines into the same number of fields, at least three).
    columns : tuple of 3 ints or column names, default=(0, 1, 2)
        Which fields hold the user, the item and the rating; names need a
        header line. Other fields (timestamps) are ignored.
    duplicates : {"error", "mean"}, default="error"
        A (user, item) pair rated twice is an error naming both lines, or is
        given the mean of its ratings.

    Blank lines and lines whose first character (after spaces) is ``#``
    are skipped: comments, as NumPy's text readers take them (line numbers in
    messages still count them).

    Returns
    -------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        The ratings; unstored entries are unrated.
    user_ids, item_ids : ndarray of str
        The ids of the rows and columns as written in the file, in natural
        order (numerically when they are all integers).

    Raises
    ------
    ValueError
        Naming the file and line, for a line with too few fields, a rating
        that is not a number, or (with ``duplicates="error"``) a repeated pair;
        and when no separator can be detected (then pass ``sep``).
    """
    return parse_ratings(open_text(path).read().splitlines(), path, sep=sep, columns=columns,
                         duplicates=duplicates)


class SeparatorNotFound(ValueError):
    """No separator splits the lines into user, item and rating.

    ``problem`` says so without saying how to name one, for callers (the
    command line) that name it their own way; the message says ``sep``.
    """

    def __init__(self, problem):
        super().__init__(f"{problem}; pass the separator as sep")
        self.problem = problem


def is_data_line(line):
    """Whether a line holds data: not blank, and not a comment (``#`` first, as NumPy's readers take it)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def parse_ratings(lines, path, *, sep=None, columns=(0, 1, 2), duplicates="error"):
    """:func:`read_ratings` on the lines of text ``lines`` read from ``path``."""
    if duplicates not in ("error", "mean"):
        raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
    sample = [line for line in lines if is_data_line(line)][: _SNIFF_LINES + 1]
    if not sample:
        raise ValueError(f"'{path}' is empty")
    if sep is None:
        # the first line may be a header with another number of fields
        sep = sniff_separator(sample[1:] or sample, 3) or sniff_separator(sample, 3)
        if sep is None:
            raise SeparatorNotFound(f"'{path}': cannot tell how the fields are separated (tried tab, '::', "
                                    "comma, semicolon and spaces, needing at least user, item and rating)")
    first = [field.strip() for field in split_line(sample[0], sep)]
    rating_field = int(columns[2]) if _is_index(columns[2]) else None
    header = not all(_is_index(c) for c in columns) or (
        rating_field is not None and (rating_field >= len(first) or not is_number(first[rating_field]))
    )
    positions = _positions(columns, first if header else None, path)
    header_line = next(number for number, line in enumerate(lines, start=1) if is_data_line(line)) if header else 0
    users, items, ratings, line_numbers = [], [], [], []
    rating_column = positions[2]
    needed = max(positions) + 1
    for number, line in enumerate(lines, start=1):
        if number == header_line or not is_data_line(line):
            continue
        fields = split_line(line, sep)
        if len(fields) < needed:
            raise ValueError(f"'{path}', line {number}: {len(fields)} fields, expected at least {needed} "
                             f"(user, item, rating) separated by {_describe(sep)}")
        value = fields[rating_column].strip()
        if not is_number(value):
            raise ValueError(f"'{path}', line {number}: rating {value!r} is not a number")
        users.append(fields[positions[0]].strip())
        items.append(fields[positions[1]].strip())
        ratings.append(float(value))
        line_numbers.append(number)
    if not ratings:
        raise ValueError(f"'{path}': no user, item, rating lines")
    user_ids, item_ids = natural_order(users), natural_order(items)
    rows = _codes(users, user_ids)
    cols = _codes(items, item_ids)
    ratings = np.asarray(ratings)
    keys = rows * len(item_ids) + cols
    unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts > 1)
    if repeated.size and duplicates == "error":
        examples = []
        for key in repeated[:3]:
            first, second = np.flatnonzero(inverse == key)[:2]  # in file order
            examples.append(f"user {users[first]!r}, item {items[first]!r} on lines "
                            f"{line_numbers[first]} and {line_numbers[second]}")
        raise ValueError(f"'{path}': {repeated.size} (user, item) pair(s) rated more than once "
                         f"({'; '.join(examples)}); keep one rating per pair, or average them with "
                         "duplicates='mean' (--duplicates mean)")
    means = np.bincount(inverse, weights=ratings) / counts
    X = sp.csr_array((means, (unique // len(item_ids), unique % len(item_ids))), shape=(len(user_ids), len(item_ids)))
    X.sort_indices()
    return X, user_ids.astype(str), item_ids.astype(str)


def _codes(ids, ordered):
    position = {value: index for index, value in enumerate(ordered)}
    return np.fromiter((position[i] for i in ids), dtype=np.int64, count=len(ids))


def _is_index(column):
    return isinstance(column, (int, np.integer)) or (isinstance(column, str) and column.isdigit())


def _positions(columns, names, path):
    """The field positions of ``columns`` (indices, or names found in the header ``names``)."""
    if len(columns) != 3:
        raise ValueError(f"columns must name 3 fields (user, item, rating), got {columns!r}")
    positions = []
    for column in columns:
        if _is_index(column):
            positions.append(int(column))
        elif names is None or column not in names:
            raise ValueError(f"'{path}': no column {column!r} in the header line "
                             f"({', '.join(names) if names else 'none'})")
        else:
            positions.append(names.index(column))
    return positions


def _describe(separator):
    return {"\t": "tabs", " ": "spaces", ",": "commas", ";": "semicolons"}.get(separator, repr(separator))
