# li2lab: the web laboratory in one container (CPU torch, SQLite run store on a volume).
# The defaults are what a lab uses. Two build arguments exist for machines that cannot reach
# them (scripts/lab-check.sh): BASE_IMAGE, any Debian image whose `python` and `pip` are
# Python 3.11, and TORCH_INDEX, a package index serving torch 2.13.0 (CPU) and its dependencies.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LI2_DATA_DIR=/data \
    LI2_PORT=8000 \
    NUMBA_CACHE_DIR=/home/li2/.cache/numba

# Settings and the user come before the ~1 GB of torch: each later instruction is a new layer
# that a copying storage driver (vfs) duplicates whole, so few of them follow torch.
EXPOSE 8000
# python:slim has no curl; the standard library is enough for a health probe
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]
CMD ["li2", "serve", "--host", "0.0.0.0"]
WORKDIR /app
RUN groupadd --gid 10001 li2 \
    && useradd --create-home --uid 10001 --gid 10001 li2 \
    && mkdir -p /data \
    && chown 10001:10001 /data
VOLUME ["/data"]

# torch first, from the CPU index: its own layer, cached across code changes. Its C++ headers,
# test binaries and protoc (~160 MB) serve extension builds and torch's own tests, not a run.
RUN pip install --index-url "${TORCH_INDEX}" torch==2.13.0 \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "${site}/torch/test" "${site}/torch/include" "${site}"/torch/bin/*Test \
        "${site}"/torch/bin/test_* "${site}"/torch/bin/protoc*

# .dockerignore lets in only pyproject.toml, README.md and the four packages
COPY . .
# One layer (each layer after torch is a full copy under vfs): the install; the test suites of
# numba and llvmlite and plotly's Python figure classes (the server serves only plotly.min.js),
# ~65 MB; a check that the server still imports; li2core/kernels.py's compiled loops built once,
# into the cache the server's user reads.
RUN pip install . \
    && site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && rm -rf "${site}/numba/tests" "${site}/llvmlite/tests" "${site}/plotly/graph_objs" \
        "${site}/plotly/validators" "${site}/plotly/labextension" \
    && python -c "import server.app; assert server.app.PLOTLY_JS.is_file()" \
    && python -c "from li2core import batched_kernels, kernels, torch_exact; assert kernels.warm_up(); torch_exact.warm_up(); batched_kernels.warm_up()" \
    && chown -R 10001:10001 /home/li2/.cache

# numeric, so the host and orchestrators can tell it is not root without reading /etc/passwd
USER 10001:10001
