# The Doorman edge: the SMTP listener that refuses unknown recipients in-session (see README.md).
#
#   docker build --network host -f docker/edge.Dockerfile -t doorman/edge:0.1.0 .
#   docker run --network host doorman/edge:0.1.0 --directory=127.0.0.1:50051
#
# Runs as the numeric non-root user 65532 and needs no writable path: it works with a read-only root filesystem.
# SIGTERM (docker stop, Kubernetes) drains: stop accepting, 421 4.3.2 to idle sessions, let transactions finish
# within --shutdown-grace-seconds, exit 0. Options come from flags, DOORMAN_EDGE_* variables or --config FILE.
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
      libgrpc++1.51 libprotobuf32 libhiredis0.14 libyaml-cpp0.7 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY --from=build /out/doorman-edge /usr/local/bin/doorman-edge
# Fail the build, not the pod, if a shared library is missing.
RUN if ldd /usr/local/bin/doorman-edge | grep 'not found'; then exit 1; fi
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="doorman-edge" \
      org.opencontainers.image.description="Doorman edge: inbound SMTP gateway that refuses unknown recipients in-session" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.vendor="Doorman" \
      org.opencontainers.image.source="https://example.invalid/doorman" \
      org.opencontainers.image.documentation="docs/kubernetes.md" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
USER 65532:65532
# 2525: SMTP (the Service maps 25 to it); 9025: HTTP /metrics, /healthz, /readyz.
EXPOSE 2525 9025
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/doorman-edge"]
CMD ["--listen=0.0.0.0:2525", "--http-listen=0.0.0.0:9025"]
