# profscope server: docker build -t profscope . && docker run -p 4040:4040 -v profscope-data:/data profscope
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PROFSCOPE_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY profscope ./profscope
COPY sql ./sql
RUN pip install . && useradd --system --uid 10001 --home-dir /data profscope \
    && mkdir -p /data && chown profscope /data

USER profscope
VOLUME ["/data"]
EXPOSE 4040
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4040/healthz', timeout=2)"
# listen on all interfaces inside the container; publish with -p 4040:4040
CMD ["profscope", "serve", "--host", "0.0.0.0", "--port", "4040", "--data-dir", "/data"]
