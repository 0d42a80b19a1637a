"""The two kinds of failure every command maps to an exit code.

Each module's own error subclasses one of these, so `supagate` can report any of them
without importing the module that raised it (start-up stays cheap)."""


class BadInput(ValueError):
    """A file, flag or setting that cannot be used as given (exit 2); names it and the fix."""


class Failed(RuntimeError):
    """Work that was attempted and did not succeed (exit 1); says what and the next step."""
