"""snnc's user-facing error: the CLI prints its message and exits with code 2, no traceback."""


class SnncError(Exception):
    """A problem with the user's input (file, node, layer, shape) and what to do about it."""
