"""Reading rating files as they come: MovieLens' ``u.data`` and ``ratings.dat``,
CSV exports with a header, compressed or not, of any size.

A file is streamed in blocks of whole lines (:func:`line_blocks`), so memory
holds one block besides what has been parsed. Each block is parsed in C, by
pandas' CSV parser when pandas is installed, else by NumPy's ``loadtxt``
(integer ids) or line by line; a block the fast parsers refuse is parsed line
by line, which gives the message naming the line. Parsed ratings are kept as
32-bit codes (and 32-bit values when that is exact) until the matrix is built.
"""

import bz2
import codecs
import contextlib
import csv
import gzip
import io
import re
import sys
import time
import zipfile
from functools import partial

import numpy as np
import scipy.sparse as sp

SEPARATORS = ("::", "\t", ",", ";", " ")
"""Tried in this order; ``" "`` stands for any run of whitespace."""

PARSERS = ("auto", "pandas", "numpy")

BLOCK_BYTES = 1 << 22
"""Files are read and parsed in blocks of about this many bytes of whole lines: the
cost per block is small beside its parse, and the memory a block takes while parsed
(several times its text, kept by the heap once freed) stays small beside the matrix."""

MAX_LINE_BYTES = 1 << 20
"""A longer line is refused: the file is not a text table (a decompression bomb of one line, say)."""

_SNIFF_LINES = 50
_INTEGER_ID = re.compile(r"-?(0|[1-9][0-9]{0,17})")  # written as NumPy and pandas write int64s
_FIELD_SEPARATOR = "\x1f"  # what a multi-character separator becomes for the C parsers


@contextlib.contextmanager
def open_binary(path):
    """``path`` opened for reading bytes, decompressed by its suffix (.gz, .bz2, .zip) as it is read.

    A .zip archive must hold one data file (besides directories and files named
    ``README*``).
    """
    name = str(path).lower()
    with contextlib.ExitStack() as stack:
        if name.endswith(".gz"):
            stream = gzip.open(path, "rb")
        elif name.endswith(".bz2"):
            stream = bz2.open(path, "rb")
        elif name.endswith(".zip"):
            archive = stack.enter_context(zipfile.ZipFile(path))
            members = [m for m in archive.namelist() if not m.endswith("/") and "readme" not in m.lower()]
            if len(members) != 1:
                raise ValueError(f"'{path}' holds {len(members)} data files ({', '.join(members[:5])}); "
                                 "extract the one to read")
            stream = archive.open(members[0])
        else:
            stream = open(path, "rb")
        yield stack.enter_context(stream)


def line_blocks(path, block_bytes=None, opener=open_binary):
    """The file as ``(number of its first line, bytes)`` blocks of whole lines, each ending in a newline.

    Decompressed as read (``opener(path)``, by default :func:`open_binary`),
    without a UTF-8 byte order mark, so memory holds one block (of about
    ``block_bytes``, by default :data:`BLOCK_BYTES`) whatever the size of the file.

    Raises
    ------
    ValueError
        For a line longer than :data:`MAX_LINE_BYTES`: not a text table.
    """
    block_bytes = block_bytes or BLOCK_BYTES
    with opener(path) as stream:
        number, carry = 1, b""
        chunk = stream.read(block_bytes).removeprefix(codecs.BOM_UTF8)
        while chunk:
            end = chunk.rfind(b"\n") + 1
            if end:
                block, carry = carry + chunk[:end], chunk[end:]
                yield number, block
                number += _count_lines(block)
            else:
                carry += chunk
            if len(carry) > MAX_LINE_BYTES:
                raise ValueError(f"'{path}', line {number}: longer than {MAX_LINE_BYTES >> 20} MiB without "
                                 "a line break; not a text file of lines")
            chunk = stream.read(block_bytes)
        if carry:
            yield number, carry + b"\n"


def _count_lines(block):
    return int(np.count_nonzero(np.frombuffer(block, np.uint8) == ord("\n")))  # several times bytes.count's speed


def decode(block):
    """Text of bytes: UTF-8, or Latin-1 (as MovieLens' older files are) when not UTF-8."""
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        return block.decode("latin-1")


def text_lines(path, opener=open_binary):
    """The lines of a text file (without line ends), decompressed and decoded as read, one block at a time."""
    for _, block in line_blocks(path, opener=opener):
        yield from decode(block).splitlines()


def sniff_separator(lines, min_fields, separators=SEPARATORS):
    """The first of ``separators`` that splits every sample line alike into at
    least ``min_fields`` fields, or None."""
    lines = [line for line in lines if line.strip()][:_SNIFF_LINES]
    for separator in separators:
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


def is_data_line(line):
    """Whether a line holds data: not blank, and not a comment (``#`` first, as NumPy's readers take it)."""
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


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


class SeparatorNotFound(ValueError):
    """No separator splits the lines into user, item and rating.

    ``problem`` says so without saying how to name one, for callers (the
    command line) that name it their own way; the message says ``sep``.
    """

    def __init__(self, problem):
        super().__init__(f"{problem}; pass the separator as sep")
        self.problem = problem


class RepeatedRatings(ValueError):
    """A (user, item) pair is rated more than once; ``problem`` says which, without saying what to do."""

    def __init__(self, problem):
        super().__init__(f"{problem}; keep one rating per pair, or average them with duplicates='mean'")
        self.problem = problem


def read_ratings(path, *, sep=None, columns=(0, 1, 2), duplicates="error", parser="auto", as_frame=False,
                 verbose=False):
    """Read a rating file (one ``user, item, rating`` per line) into a sparse matrix.

    Parameters
    ----------
    path : str or path-like
        A text file, plain or compressed (``.gz``, ``.bz2``, or a ``.zip``
        holding one data file): MovieLens' ``u.data`` (tab-separated, with a
        timestamp), ``ratings.dat`` (``::``), CSV exports with a header line...
        Read as a stream: memory holds the ratings read so far, compactly, and
        one block of text.
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
    parser : {"auto", "pandas", "numpy"}, default="auto"
        What parses the lines: pandas' CSV parser ("auto" when pandas is
        installed: several times faster), or NumPy's ``loadtxt`` for files
        whose ids are integers and Python otherwise. The result is the same.
    as_frame : bool, default=False
        Return one pandas DataFrame of sparse columns (needs pandas): users as
        its index, items as its columns. An estimator fitted on it knows the
        item ids (``feature_names_in_``) and names them in its warnings and
        model files. Building the frame costs time at prize scale (one pandas
        column per item); the matrix and id arrays are the fast path.
    verbose : bool, default=False
        Report the lines read and the rate on standard error every few seconds.

    Returns
    -------
    X : scipy.sparse.csr_array of shape (n_users, n_items)
        The ratings; unstored entries are unrated.
    user_ids, item_ids : ndarray of str
        The ids of the rows and columns as written in the file, in natural
        order (numerically when they are all integers).
    frame : pandas.DataFrame of shape (n_users, n_items)
        With ``as_frame=True``: the ratings as sparse columns (unstored:
        unrated) indexed by ``user_ids``, with ``item_ids`` as columns.

    Raises
    ------
    ValueError
        Naming the file and line, for a line with too few fields, a rating
        that is not a number, or (with ``duplicates="error"``) a repeated pair;
        when no separator can be detected (then pass ``sep``); and for a file
        that does not fit in memory.

    Notes
    -----
    Blank lines and lines whose first character (after spaces) is ``#``
    are skipped: comments, as NumPy's text readers take them (line numbers in
    messages still count them). Ids are kept as written, except that when
    those of the first lines are all integers, ids are compared as integers
    (``007`` is then user ``7``). Bytes that are not UTF-8 are read as
    Latin-1. A line longer than :data:`MAX_LINE_BYTES` (1 MiB) is refused.
    """
    if as_frame and _pandas() is None:
        raise ImportError("as_frame=True needs pandas: pip install pandas")
    read = read_opened(path, open_binary, sep=sep, columns=columns, duplicates=duplicates, parser=parser,
                       verbose=verbose)
    return ratings_frame(*read) if as_frame else read


def ratings_frame(X, user_ids, item_ids):
    """A rating matrix as a pandas DataFrame of sparse columns, indexed by user and item ids."""
    return _pandas().DataFrame.sparse.from_spmatrix(X, index=user_ids, columns=item_ids)


def read_opened(path, opener, *, sep=None, columns=(0, 1, 2), duplicates="error", parser="auto", verbose=False):
    """:func:`read_ratings` of what ``opener(path)`` opens: a binary stream's context (an archive member, say)."""
    if duplicates not in ("error", "mean"):
        raise ValueError(f"duplicates must be 'error' or 'mean', got {duplicates!r}")
    if parser not in PARSERS:
        raise ValueError(f"parser must be one of {PARSERS}, got {parser!r}")
    if parser == "pandas" and _pandas() is None:
        raise ImportError("parser='pandas' needs pandas: pip install pandas, or use parser='numpy'")
    use_pandas = parser != "numpy" and _pandas() is not None
    try:
        try:
            return _read(path, opener, sep, columns, duplicates, use_pandas, verbose, integer_ids=None)
        except _NotIntegers:  # an id further down is not an integer: read them all as text
            return _read(path, opener, sep, columns, duplicates, use_pandas, verbose, integer_ids=False)
    except MemoryError:
        raise ValueError(f"'{path}' does not fit in memory once decompressed and read") from None


class _NotIntegers(Exception):
    pass


class _Layout:
    """Where the fields of a rating file are: its separator, the positions of
    user, item and rating, its header line (0: none), and whether ids are integers."""

    def __init__(self, path, lines, sep, columns, integer_ids):
        sample = [(number, line) for number, line in lines if is_data_line(line)][: _SNIFF_LINES + 1]
        if not sample:
            raise ValueError(f"'{path}' is empty")
        texts = [line for _, line in sample]
        if sep is None:
            # the first line may be a header with another number of fields
            sep = sniff_separator(texts[1:] or texts, 3) or sniff_separator(texts, 3)
            if sep is None:
                raise SeparatorNotFound(f"'{path}': cannot tell how the fields are separated (tried tab, '::', "
                                        "comma, semicolon and spaces, needing at least user, item and rating)")
        first = [field.strip() for field in split_line(texts[0], sep)]
        rating_field = int(columns[2]) if _is_index(columns[2]) else None
        header = not all(_is_index(c) for c in columns) or (
            rating_field is not None and (rating_field >= len(first) or not is_number(first[rating_field]))
        )
        self.path, self.sep = path, sep
        self.positions = _positions(columns, first if header else None, path)
        self.header_line = sample[0][0] if header else 0
        if integer_ids is None:
            rows = [split_line(line, sep) for line in texts[1 if header else 0 :]]
            integer_ids = all(len(fields) > max(self.positions[:2]) and all(
                _INTEGER_ID.fullmatch(fields[p].strip()) for p in self.positions[:2]) for fields in rows)
        self.integer_ids = integer_ids

    def parse_lines(self, lines):
        """``(users, items, ratings)`` of ``(number, line)`` pairs, line by line, or the error naming the line."""
        users, items, ratings = [], [], []
        user_field, item_field, rating_field = self.positions
        needed = max(self.positions) + 1
        for number, line in lines:
            if number == self.header_line or not is_data_line(line):
                continue
            fields = split_line(line, self.sep)
            if len(fields) < needed:
                raise ValueError(f"'{self.path}', line {number}: {len(fields)} fields, expected at least {needed} "
                                 f"(user, item, rating) separated by {_describe(self.sep)}")
            value = fields[rating_field].strip()
            if not is_number(value):
                raise ValueError(f"'{self.path}', line {number}: rating {value!r} is not a number")
            users.append(fields[user_field].strip())
            items.append(fields[item_field].strip())
            ratings.append(float(value))
        if self.integer_ids:
            if not all(_INTEGER_ID.fullmatch(i) for i in users + items):
                raise _NotIntegers
            users, items = np.array(users, dtype=np.int64), np.array(items, dtype=np.int64)
        else:
            users, items = np.array(users, dtype=object), np.array(items, dtype=object)
        return users, items, np.array(ratings, dtype=np.float64)

    def parse_block(self, number, block, use_pandas):
        """:meth:`parse_lines` of a block of bytes starting at line ``number``, in C where possible."""
        fast = _parse_with_pandas if use_pandas else _parse_with_loadtxt if self.integer_ids else None
        if fast is not None:
            try:
                users, items, ratings = fast(self, block)
                if not np.isnan(ratings).any():  # NaN: a missing field, or "nan" read as Python does below
                    return users, items, ratings
            except (ValueError, TypeError, OverflowError, IndexError):
                pass  # the line-by-line parse finds and names the line, or reads what C refused
        return self.parse_lines(enumerate(decode(block).splitlines(), start=number))

    def for_c_parsers(self, block):
        """The block, its separator (one character; None for whitespace) and the positions of
        user, item and rating, as the C parsers take them."""
        if len(self.sep) == 1:
            return block, None if self.sep == " " else self.sep, self.positions
        if self.sep == "::" and _colons_in_pairs(block):
            # splitting at ":" gives the fields, and an empty one between each two
            return block, ":", [2 * p for p in self.positions]
        return block.replace(self.sep.encode(), _FIELD_SEPARATOR.encode()), _FIELD_SEPARATOR, self.positions


def _colons_in_pairs(block):
    """Whether every colon of ``block`` is one of a ``::`` standing alone (no ``:::``):
    the colons number twice the (overlapping) colon pairs, counted as 16-bit words."""
    pair = np.uint16(0x3A3A)
    even = np.frombuffer(block, np.uint16, count=len(block) // 2)
    odd = np.frombuffer(block, np.uint16, count=(len(block) - 1) // 2, offset=1)
    colons = np.count_nonzero(np.frombuffer(block, np.uint8) == ord(":"))
    return colons == 2 * (np.count_nonzero(even == pair) + np.count_nonzero(odd == pair))


def _parse_with_pandas(layout, block):
    pandas = _pandas()
    id_type = np.int64 if layout.integer_ids else object
    block, separator, (user, item, rating) = layout.for_c_parsers(block)
    frame = pandas.read_csv(  # a block that is not UTF-8 (Latin-1 text ids) goes line by line
        io.BytesIO(block), sep=separator or r"\s+", header=None, usecols=sorted({user, item, rating}),
        dtype={user: id_type, item: id_type, rating: np.float64}, comment="#", engine="c", encoding="utf-8",
        na_filter=layout.integer_ids,  # text ids such as "NA" are ids
    )
    users, items = frame[user].to_numpy(), frame[item].to_numpy()
    if not layout.integer_ids:
        users, items = _stripped(users), _stripped(items)
    return users, items, frame[rating].to_numpy(dtype=np.float64)


def _parse_with_loadtxt(layout, block):
    block, separator, positions = layout.for_c_parsers(block)
    table = np.loadtxt(
        io.BytesIO(block), delimiter=separator, comments="#", quotechar='"', usecols=positions, ndmin=1,
        dtype=[("user", np.int64), ("item", np.int64), ("rating", np.float64)], encoding="utf-8",
    )
    return table["user"], table["item"], table["rating"]


def _stripped(ids):
    """Text ids without surrounding spaces (the C parsers keep them), as the line-by-line parse reads them."""
    distinct = set(ids.tolist())
    if not all(isinstance(value, str) for value in distinct):
        raise ValueError("a missing field")  # the line-by-line parse names the line
    if any(value != value.strip() for value in distinct):
        return np.array([value.strip() for value in ids.tolist()], dtype=object)
    return ids


class _Codes:
    """Ids coded 0, 1, ... in order of first appearance, block by block.

    Each block's distinct ids are found in C (pandas' hash table, or NumPy's
    sort), then looked up among those seen before: text ids in a dict,
    integer ids in a sorted array, so that no Python code runs per id.
    """

    def __init__(self, use_pandas, integer_ids):
        self.factorize = partial(_pandas().factorize, sort=True) if use_pandas else _factorize
        self.integer_ids = integer_ids
        self.code_of = {}  # text ids
        self.known, self.known_codes = np.empty(0, np.int64), np.empty(0, np.int32)  # integer ids, sorted

    def __call__(self, ids):
        local, uniques = self.factorize(ids)
        if not self.integer_ids:
            code_of = self.code_of
            codes = np.fromiter((code_of.setdefault(i, len(code_of)) for i in uniques.tolist()), np.int32,
                                len(uniques))
            return codes[local]
        uniques = uniques.astype(np.int64, copy=False)  # sorted: the searches run in cache
        where = np.minimum(np.searchsorted(self.known, uniques), max(len(self.known) - 1, 0))
        seen = self.known[where] == uniques if len(self.known) else np.zeros(len(uniques), bool)
        codes = np.empty(len(uniques), np.int32)
        codes[seen] = self.known_codes[where[seen]]
        new = np.sort(uniques[~seen])  # coded in this order, after those seen
        codes[~seen] = len(self.known) + np.searchsorted(new, uniques[~seen])
        at = np.searchsorted(self.known, new)
        self.known = np.insert(self.known, at, new)
        self.known_codes = np.insert(self.known_codes, at, len(self.known_codes) + np.arange(len(new), dtype=np.int32))
        return codes[local]

    def natural(self):
        """The ids in natural order (as text), and each code's position in it."""
        if self.integer_ids:
            ordered, order = self.known.astype(str), self.known_codes
        else:
            ids = list(self.code_of)
            ordered = natural_order(ids)
            position = {value: index for index, value in enumerate(ordered)}
            order = np.fromiter((position[i] for i in ids), np.int64, len(ids)).argsort()
            ordered = ordered.astype(str)
        rank = np.empty(len(ordered), dtype=np.int32)
        rank[order] = np.arange(len(ordered), dtype=np.int32)
        return ordered, rank


def _factorize(ids):
    uniques, local = np.unique(ids, return_inverse=True)
    return local.ravel(), uniques


class _Progress:
    """Lines read and the rate, on standard error every few seconds, and at the end of a read of a second or more."""

    INTERVAL = 5.0

    def __init__(self, path, verbose):
        self.path, self.verbose = path, verbose
        self.start = self.last = time.perf_counter()

    def __call__(self, lines, done=False):
        now = time.perf_counter()
        if self.verbose and (now - self.last >= self.INTERVAL or done and now - self.start >= 1.0):
            self.last = now
            rate = lines / max(now - self.start, 1e-9)
            print(f"{'read' if done else 'reading'} '{self.path}': {lines:,} lines ({rate / 1e6:.2f} M lines/s)",
                  file=sys.stderr, flush=True)


def _read(path, opener, sep, columns, duplicates, use_pandas, verbose, integer_ids):
    blocks = line_blocks(path, opener=opener)
    number, block = next(blocks, (1, b""))
    head = block[: block.find(b"\n", 1 << 16) + 1 or len(block)]  # enough lines to detect the layout
    layout = _Layout(path, enumerate(decode(head).splitlines(), start=number), sep, columns, integer_ids)
    if layout.header_line:  # the C parsers start after it
        cut = 0
        for _ in range(layout.header_line - number + 1):
            cut = block.index(b"\n", cut) + 1
        number, block = layout.header_line + 1, block[cut:]
    users, items = _Codes(use_pandas, layout.integer_ids), _Codes(use_pandas, layout.integer_ids)
    rows, cols, values = _Pages(np.int32), _Pages(np.int32), _Pages(np.float32)
    progress = _Progress(path, verbose)
    while True:
        if block:
            user, item, rating = layout.parse_block(number, block, use_pandas)
            rows.append(users(user))
            cols.append(items(item))
            single = rating.astype(values.dtype)
            if values.dtype == np.float32 and not np.array_equal(single, rating, equal_nan=True):
                values, single = values.astype(np.float64), rating
            values.append(single)
        number, block = next(blocks, (None, None))
        if block is None:
            break
        progress(number - 1)
    progress(len(rows), done=True)
    if not len(rows):
        raise ValueError(f"'{path}': no user, item, rating lines")
    user_ids, user_rank = users.natural()
    item_ids, item_rank = items.natural()
    rows, cols, values = rows.array(user_rank), cols.array(item_rank), values.array()
    shape = (len(user_ids), len(item_ids))
    grouped = _non_decreasing(rows)
    if grouped:  # lines grouped by user (ratings.dat, ratings.csv): the matrix takes the arrays
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=shape[0]))])
        indptr = indptr.astype(np.int32 if len(values) < 2**31 else np.int64)
        X = sp.csr_array((values, cols, indptr), shape=shape, copy=False)
        X.sort_indices()  # each row's (item, rating) pairs, in place: rows stays aligned
        X = sp.csr_array((X.data, X.indices, X.indptr), shape=shape, copy=False)
        cols, values = X.indices, X.data
    if not grouped or not X.has_canonical_format:
        X = sp.coo_array((values, (rows, cols)), shape=shape).tocsr()  # sums repeated pairs
    if X.nnz < len(values):
        counts = sp.coo_array((np.ones(len(values), np.int32), (rows, cols)), shape=shape).tocsr()
        if duplicates == "error":
            raise RepeatedRatings(_repeated_pairs(path, opener, layout, counts, rows, cols, user_ids, item_ids))
        X = sp.coo_array((values.astype(np.float64), (rows, cols)), shape=shape).tocsr()
        X.data /= counts.data
    del rows, cols, values
    X.sort_indices()
    return sp.csr_array((X.data.astype(np.float64), X.indices, X.indptr), shape=shape), user_ids, item_ids


def _non_decreasing(values, chunk=1 << 22):
    """Whether ``values`` never decrease, with temporaries of a chunk's size."""
    return all(not np.any(values[start + 1 : stop + 1] < values[start:stop])
               for start in range(0, len(values) - 1, chunk) for stop in [min(start + chunk, len(values) - 1)])


class _Pages:
    """A 1-D array filled block by block, in pages that are each their own allocation.

    The pages, large, are mapped from and returned to the operating system
    whole, where the many small arrays of the blocks would stay in the heap
    once freed; untouched parts of a page take no memory.
    """

    ENTRIES = 1 << 24

    def __init__(self, dtype):
        self.dtype, self.pages, self.fill = np.dtype(dtype), [], self.ENTRIES

    def __len__(self):
        return self.ENTRIES * (len(self.pages) - 1) + self.fill if self.pages else 0

    def append(self, values):
        while len(values):
            if self.fill == self.ENTRIES:
                self.pages.append(np.empty(self.ENTRIES, self.dtype))
                self.fill = 0
            taken = values[: self.ENTRIES - self.fill]
            self.pages[-1][self.fill : self.fill + len(taken)] = taken
            self.fill += len(taken)
            values = values[len(taken) :]

    def astype(self, dtype):
        converted = _Pages(dtype)
        for page in self._drained():
            converted.append(page)
        return converted

    def array(self, mapping=None):
        """The values as one array (``mapping[values]`` with a mapping), freeing each page once copied."""
        out, start = np.empty(len(self), self.dtype), 0
        for page in self._drained():
            for part in range(0, len(page), 1 << 20):  # indexing makes a 64-bit copy of the indices
                piece = page[part : part + (1 << 20)]
                out[start : start + len(piece)] = piece if mapping is None else mapping[piece]
                start += len(piece)
        return out

    def _drained(self):
        while self.pages:
            page = self.pages.pop(0)
            yield page if self.pages else page[: self.fill]
        self.fill = self.ENTRIES


def _repeated_pairs(path, opener, layout, counts, rows, cols, user_ids, item_ids):
    """What :class:`RepeatedRatings` says: how many pairs, and the first three with both lines."""
    from .._validation import rows_of_entries  # (an error's path: the readers alone import no scikit-learn)

    repeated = counts.data > 1
    pair_rows = rows_of_entries(counts)[repeated][:3]
    pair_cols = counts.indices[repeated][:3]
    occurrences = [np.flatnonzero((rows == r) & (cols == c))[:2] for r, c in zip(pair_rows, pair_cols)]
    lines = _data_line_numbers(path, opener, layout, sorted({int(k) for pair in occurrences for k in pair}))
    examples = [f"user {str(user_ids[r])!r}, item {str(item_ids[c])!r} on lines {lines[first]} and {lines[second]}"
                for r, c, (first, second) in zip(pair_rows, pair_cols, occurrences)]
    return f"'{path}': {int(repeated.sum())} (user, item) pair(s) rated more than once ({'; '.join(examples)})"


def _data_line_numbers(path, opener, layout, wanted):
    """The line numbers of the rating lines counted ``wanted`` (sorted), counting from 0."""
    found, count, wanted = {}, 0, list(wanted)
    for number, line in enumerate(text_lines(path, opener), start=1):
        if number == layout.header_line or not is_data_line(line):
            continue
        while wanted and wanted[0] == count:
            found[wanted.pop(0)] = number
        if not wanted:
            break
        count += 1
    return found


def _pandas():
    """pandas, when installed (imported on first use: it is optional)."""
    try:
        import pandas
    except ImportError:
        return None
    return pandas


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


ITEM_SEPARATORS = ("::", "|", "\t", ",", ";")
"""Item files: MovieLens' ``movies.dat`` (``::``), ``u.item`` (``|``), ``movies.csv`` (comma)."""


def read_items(path, *, sep=None, opener=open_binary):
    """Read an item file (one ``item id, title, ...`` per line): the ids and titles of items.

    MovieLens' ``u.item`` (``|``-separated, Latin-1), ``movies.dat``
    (``::``) and ``movies.csv`` (CSV with a header, quoted titles) are
    detected as rating files are: the separator among ``::``, ``|``, tab,
    comma and semicolon that splits the first lines alike into at least two
    fields, a header line when the first line's first field is not an id of
    the lines below (a word such as ``movieId``). Further fields (genres,
    dates) are ignored.

    Parameters
    ----------
    path : str or path-like
        Plain or compressed, as :func:`read_ratings` takes it.
    sep : str or None, default=None
        The field separator; None detects it.
    opener : callable, default=open_binary
        ``opener(path)`` opens the file as a binary stream's context (an
        archive member, say).

    Returns
    -------
    item_ids, titles : ndarray of str
        In the file's order.
    """
    lines = [line for line in text_lines(path, opener) if is_data_line(line)]
    if not lines:
        raise ValueError(f"'{path}' is empty")
    if sep is None:
        sep = sniff_separator(lines[1:] or lines, 2, ITEM_SEPARATORS)  # the first line may be a header
        if sep is None:
            raise SeparatorNotFound(f"'{path}': cannot tell how the fields are separated (tried '::', '|', tab, "
                                    "comma and semicolon, needing at least item id and title)")
    first = split_line(lines[0], sep)[0].strip()
    if first and not first[0].isdigit() and all(split_line(line, sep)[0].strip()[:1].isdigit() for line in lines[1:6]):
        lines = lines[1:]  # a header: "movieId,title,genres"
    ids, titles = [], []
    for line in lines:
        fields = split_line(line, sep)
        if len(fields) < 2:
            raise ValueError(f"'{path}': the line {line[:60]!r} has no title (fields separated by {_describe(sep)})")
        ids.append(fields[0].strip())
        titles.append(fields[1].strip())
    return np.array(ids, dtype=str), np.array(titles, dtype=str)
