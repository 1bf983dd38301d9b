# li2lab: the web laboratory in one container (CPU torch, SQLite run store on a volume).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# torch first, from the CPU index: its own layer, cached across code changes
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY li2core ./li2core
COPY li2cli ./li2cli
COPY server ./server
COPY frontend ./frontend
RUN pip install .

RUN groupadd --gid 10001 li2 \
    && useradd --create-home --uid 10001 --gid 10001 li2 \
    && mkdir -p /data \
    && chown 10001:10001 /data
# numeric, so the host and orchestrators can tell it is not root without reading /etc/passwd
USER 10001:10001

ENV LI2_DATA_DIR=/data \
    LI2_PORT=8000
VOLUME ["/data"]
EXPOSE 8000

# python:slim has no curl; the standard library is enough for a health probe
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]

CMD ["li2", "serve", "--host", "0.0.0.0"]
