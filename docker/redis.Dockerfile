# Redis for Doorman's tests and for the chart's bundled StatefulSet: the same Debian 12 base + Debian's redis-server,
# and redis-sentinel for the chart's sentinel architecture (redis.architecture: sentinel runs it in a second container).
#
#   docker build --network host -f docker/redis.Dockerfile -t doorman/redis:7.0 .
#
# Runs as the numeric non-root user 65532; the data directory /data is the only writable path (a volume in the
# chart). Redis exits cleanly (saving, if persistence is on) on SIGTERM.
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server redis-sentinel \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && mkdir -p /data && chown 65532:65532 /data && chmod 0770 /data
ARG VERSION=7.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="doorman-redis" \
      org.opencontainers.image.description="Debian 12 redis-server and redis-sentinel for Doorman (tests and the chart's bundled Redis)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="Doorman" \
      org.opencontainers.image.base.name="debian:bookworm-slim"
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 6379
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/redis-server"]
CMD ["--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--appendonly", "yes"]
