# The operator image deploy/ runs: `docker build -t <registry>/awsctl:0.1.0 .`
FROM python:3.11-slim
WORKDIR /app
COPY requirements/runtime.txt ./requirements/
# The locked runtime set (hashes checked; the same versions the tests ran), then awsctl itself.
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY awsctl ./awsctl
RUN pip install --no-cache-dir --no-deps --no-build-isolation . && useradd --uid 65532 --no-create-home awsctl
USER 65532
ENV MALLOC_ARENA_MAX=2 PYTHONUNBUFFERED=1
ENTRYPOINT ["awsctl"]
CMD ["run"]
