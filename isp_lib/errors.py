"""The one exception type that the command line turns into a clean one-line error."""


class UserError(Exception):
    """Bad input from the user: the message says what is wrong and names the fix.

    The command line prints it as one line and exits with status 2, without a traceback.
    """
