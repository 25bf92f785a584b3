"""The one exception type the library raises for bad user input."""


class DissectError(ValueError):
    """A problem with the user's input; the message names the problem and the fix."""
