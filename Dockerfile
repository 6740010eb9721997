# The amlscore scoring service as an image a bank builds from this repository (docs/serving.md,
# "Deployable artefacts"). The image carries the code and one model set; data and state are mounted.
#
#   amlscore export-model --alias champion --out bundle/model_set
#   docker build -t amlscore:0.1.0 .
#   docker run -p 3000:3000 -v /srv/aml/data:/data:ro -v /srv/aml/state:/state amlscore:0.1.0
#
# /data holds the data folder in the contract (customers; transactions and reports for the warm-up),
# /state the online feature state, the audit log, feedback and the API keys (state/api_keys.yaml).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY amlscore ./amlscore
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 aml && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/aml aml
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --constraint /tmp/constraints.txt /tmp/wheels/amlscore-*.whl \
    && rm -rf /tmp/wheels /tmp/constraints.txt \
    && mkdir -p /data /state \
    && chown 10001:10001 /state
COPY --chown=root:root bundle/model_set /opt/amlscore/model_set
ENV AML_MODEL_DIR=/opt/amlscore/model_set \
    AML_DATA_DIR=/data \
    AML_STATE_DIR=/state \
    AML_HOME=/home/aml \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/aml
EXPOSE 3000
VOLUME ["/state"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:3000/readyz', timeout=4).status != 200)"]
CMD ["python", "-m", "bentoml", "serve", "amlscore.cli.service_app:AmlScoring", "--host", "0.0.0.0", "--port", "3000"]
