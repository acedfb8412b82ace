# The DaCirco worker image, for `dacirco serve --runtime pod` (Kubernetes) and as the base of
# an OpenStack worker image. It cannot be built on the development machines (no Docker, no
# registry but PyPI): build and load it where a cluster runs, e.g.
#   docker build -t dacirco-worker:latest .
#   kind load docker-image dacirco-worker:latest            # kind
#   docker save dacirco-worker:latest | sudo k3s ctr images import -   # k3s
# The pod gives `--controller`, `--worker-id`, `--name`, `--cpus`, `--memory-gb` as args and
# the worker's own token in DACIRCO_WORKER_TOKEN; the image holds no credential.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# ffmpeg comes from the imageio-ffmpeg wheel (a dependency): nothing to apt-get.
RUN pip install . && rm -rf /src

RUN useradd --create-home --uid 10001 dacirco
USER dacirco
WORKDIR /home/dacirco

ENTRYPOINT ["dacirco", "worker"]
CMD ["--help"]
