"""DaCirco: transcoding on demand."""

__version__ = "0.1.0"
