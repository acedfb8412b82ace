"""``python -m dacirco.worker``: how runtimes start a worker process."""

from dacirco.worker.cli import main

main()
