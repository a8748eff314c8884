"""fpim command-line interface: parses arguments and YAML, calls quant, sim and hw."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fpim")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
