# The Doorman directory: recipient verdicts and the admin API over gRPC, backed by Redis; ships doormanctl.
#
#   docker build --network host -f docker/directory.Dockerfile -t doorman/directory:0.1.0 .
#   docker run --network host doorman/directory:0.1.0 --redis-host=127.0.0.1
#   docker exec <container> doormanctl --server 127.0.0.1:50051 domain list
#
# Runs as the numeric non-root user 65532 and needs no writable path: it works with a read-only root filesystem.
# SIGTERM (docker stop, Kubernetes) stops accepting RPCs and gives in-flight ones --shutdown-grace-seconds, then
# exits 0. Options come from flags, DOORMAN_DIRECTORY_* variables or --config FILE.
# ---------------------------------------------------------------------------------------------------------------
# Build stage. It is byte-for-byte the same in edge.Dockerfile and directory.Dockerfile (scripts/ci-images.sh checks
# that), so the second image reuses the first one's cached build: the sources are compiled and tested once.
# ---------------------------------------------------------------------------------------------------------------
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE} AS build
# The build packages of scripts/setup.sh, without the test-only daemons (redis-server, postfix, swaks): the
# integration tests need real processes on loopback and run outside the image build.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config binutils \
      libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev grpc-proto \
      libboost-dev libboost-system-dev libhiredis-dev libssl-dev libyaml-cpp-dev libldap-dev \
      libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole source tree minus what docker/<name>.Dockerfile.dockerignore leaves out (VCS data, build trees, docs,
# charts, scripts, docker/), so that edits to those do not invalidate the build cache.
COPY . .
# Parallel compile jobs (docker build --build-arg JOBS=1 on a small machine).
ARG JOBS=2
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j "${JOBS}" --target \
      doorman-edge doorman-directory doormanctl smtp_tests edge_session_tests directory_tests
# Unit tests only (no sockets, no daemons). The integration suite runs outside, against real processes.
RUN ctest --test-dir /build --output-on-failure -j "${JOBS}" --timeout 120 \
      -R '^smtp\.|^edge\.|^directory\.Directory(Checks|Normalise)\.'
# Stripped copies for the runtime images (the debug information stays in this stage).
RUN mkdir -p /out \
 && cp /build/edge/doorman-edge /build/directory/doorman-directory /build/directory/doormanctl /out/ \
 && strip --strip-unneeded /out/*

# ---------------------------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
# Runtime libraries only (found with ldd + dpkg -S on the binaries); no compiler, no shell tools beyond the base.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libhiredis0.14 libyaml-cpp0.7 libssl3 libldap-2.5-0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=build /out/doorman-directory /out/doormanctl /usr/local/bin/
RUN for b in /usr/local/bin/doorman-directory /usr/local/bin/doormanctl; do \
      if ldd "$b" | grep 'not found'; then exit 1; fi; done
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="doorman-directory" \
      org.opencontainers.image.description="Doorman directory: recipient verdicts over gRPC, backed by Redis; includes doormanctl" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.vendor="Doorman" \
      org.opencontainers.image.source="https://example.invalid/doorman" \
      org.opencontainers.image.documentation="docs/kubernetes.md" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
USER 65532:65532
# 50051: gRPC (RecipientService, AdminService, grpc.health.v1, reflection); 9026: HTTP /metrics.
EXPOSE 50051 9026
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/doorman-directory"]
CMD ["--listen=0.0.0.0:50051", "--http-listen=0.0.0.0:9026"]
