"""The one exception type users see: a clear, single-line message, never a traceback."""


class GankitError(Exception):
    """A problem with the user's input or environment, phrased as what was wrong and what to do.

    The CLI prints ``gankit: <message>`` and exits with status 2 (1 for training failures).
    """


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(GankitError):
    """Ctrl-C or SIGTERM: a checkpoint was written before exiting."""


class WriteFailed(GankitError, OSError):
    """A file could not be written (full disk, read-only place); what was written before stays.

    Also an ``OSError``, so code that handles failed writes in general still catches it.
    """
