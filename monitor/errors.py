"""Errors that carry a message meant for the user, not a traceback."""


class DriftstreamError(Exception):
    """A problem with the user's input or configuration, stated in one line."""


class ProfileFormatError(DriftstreamError):
    """A reference profile file that cannot be read by this version."""
