# profscope server: docker build -t profscope . && docker run -p 4040:4040 -v profscope-data:/data profscope
# Stage 1 builds the wheel (hatch_build.py compiles the C pprof reader, so it needs a compiler);
# stage 2 installs it without one.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY profscope ./profscope
COPY sql ./sql
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -c "import glob, sys; w = glob.glob('/wheels/profscope-*.whl'); sys.exit(0 if w and 'none-any' not in w[0] else 'the C pprof reader was not built')"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROFSCOPE_DATA_DIR=/data

COPY --from=build /wheels /wheels
RUN pip install /wheels/profscope-*.whl && rm -rf /wheels \
    && python -c "from profscope.formats import pprof_scan; assert pprof_scan.native is not None" \
    && useradd --system --uid 10001 --home-dir /data profscope \
    && mkdir -p /data && chown profscope /data

USER profscope
WORKDIR /data
VOLUME ["/data"]
EXPOSE 4040
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4040/healthz', timeout=2)"
# listen on all interfaces inside the container; publish with -p 4040:4040
CMD ["profscope", "serve", "--host", "0.0.0.0", "--port", "4040", "--data-dir", "/data"]
