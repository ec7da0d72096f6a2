"""camel-k-kit-gc: a registry garbage collector for Apache Camel K IntegrationKit images."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camel-k-kit-gc")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+src"
