"""Errors a user can cause. The CLI prints them as one line and exits with code 2."""


class SweeperError(Exception):
    """Bad input: a YAML file, CLI option, data folder or Parquet file that breaks a rule.

    The message is one line that names the file, the key or value, and the rule broken.
    """

    exit_code = 2
