"""Output files as the shell's ``>`` treats them.

* ``-`` is standard output, for text and binary formats alike.
* A path that exists and is not a regular file (a character device such as a
  terminal, a FIFO, a socket) is opened and written in place: never renamed
  over, never unlinked.
* A regular file, or a new one, is written to a temporary file beside it and
  renamed over it at the end, so that readers see the old file or the complete
  new one, and an interrupted or failed command leaves the old file as it was.
  An existing file keeps its permission bits (and owner, where allowed); a new
  one gets ``0666 & ~umask``, as the shell gives it.
* A symbolic link is followed: its target is replaced (the temporary file lies
  beside the target), and the link stays a link.
* Text is UTF-8 whatever the locale, as input is read.

:func:`check_output` refuses, before any work, what cannot be written: a
directory, a missing directory, a path that is not writable.
"""

import contextlib
import io
import os
import stat
import sys
import tempfile

ENCODING = "utf-8"


class OutputError(OSError):
    """An output path that cannot be written, named as the user gave it."""


def check_output(path):
    """Raise :class:`OutputError` naming ``path`` if it cannot be written.

    Meant to run before any long work, so that a typo costs nothing.
    """
    if path == "-":
        return
    target = os.path.realpath(path)  # a symlink's target, dangling or not
    if os.path.isdir(target):
        raise OutputError(f"cannot write '{path}': it is a directory")
    if os.path.exists(target):
        if not os.access(target, os.W_OK):
            raise OutputError(f"cannot write '{path}': permission denied")
        if not stat.S_ISREG(os.stat(target).st_mode):
            return  # written in place
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write '{path}': no directory '{directory}'")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write '{path}': directory '{directory}' is not writable")


@contextlib.contextmanager
def open_output(path, *, binary=False):
    """A stream to ``path`` (see the module's rules), text in UTF-8 unless ``binary``.

    Text streams are opened with ``newline=""``, as :mod:`csv` wants.
    """
    if path == "-":
        with _standard_output(binary) as stream:
            yield stream
        return
    check_output(path)
    target = os.path.realpath(path)
    try:
        status = os.stat(target)
    except FileNotFoundError:
        status = None
    if status is not None and not stat.S_ISREG(status.st_mode):
        with _open(target, binary) as stream:
            yield stream
        return
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".skgmmfill-", suffix=".tmp")
    except OSError as error:  # a read-only file system, a full disk: name the user's path, not ours
        raise OutputError(f"cannot write '{path}': {error.strerror}") from error
    try:
        with _open(handle, binary) as stream:
            yield stream
        _take_mode(temporary, status)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _open(file, binary):
    return open(file, "wb") if binary else open(file, "w", encoding=ENCODING, newline="")


def _take_mode(temporary, status):
    """Give the temporary file the replaced file's mode and owner, or a new file's mode."""
    if status is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp made it 0600
        return
    os.chmod(temporary, stat.S_IMODE(status.st_mode))
    with contextlib.suppress(OSError):  # only root may give a file away
        os.chown(temporary, status.st_uid, status.st_gid)


@contextlib.contextmanager
def _standard_output(binary):
    stdout = sys.stdout
    buffer = getattr(stdout, "buffer", None)
    if buffer is None:  # stdout replaced by a text stream (tests, notebooks): it takes str
        if binary:
            raise OutputError("binary output cannot go to this standard output; give a file name")
        yield stdout
        stdout.flush()
        return
    stdout.flush()
    if binary:
        yield buffer
        buffer.flush()
        return
    stream = io.TextIOWrapper(buffer, encoding=ENCODING, newline="", write_through=True)
    try:
        yield stream
        stream.flush()
    finally:
        stream.detach()  # leave sys.stdout's buffer open
