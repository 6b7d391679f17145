# syntax=docker/dockerfile:1
#
# pubsubd as a drop-in for the official Redis image:
#   docker run -p 6379:6379 IMAGE
#   docker run IMAGE pubsubd --requirepass x          (or: docker run IMAGE --requirepass x)
#   docker run -v ./redis.conf:/usr/local/etc/redis/redis.conf IMAGE pubsubd /usr/local/etc/redis/redis.conf
# Listens on every interface by default (docker/defaults.conf), as the official image does;
# a mounted redis.conf or flags override that. Runs as the non-root user `redis` (uid 999).

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Dependencies first, in their own layer: rebuilt only when Cargo.toml, Cargo.lock or the
# benches change (cargo reads the manifest's [[bench]] targets, so their files must exist).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir -p src/bin/pubsubd \
    && echo 'fn main() {}' > src/bin/pubsubd/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin pubsubd \
    && rm -rf src target/release/.fingerprint/pubsubd-* target/release/deps/pubsubd-* target/release/deps/libpubsubd-*
COPY src ./src
RUN cargo build --release --locked --bin pubsubd \
    && strip target/release/pubsubd \
    && target/release/pubsubd --version

FROM debian:${DEBIAN_RELEASE}-slim
# The same user and group ids as the official Redis image, so mounted volumes keep working.
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /data --no-create-home redis \
    && mkdir -p /data /usr/local/etc/redis /etc/pubsubd \
    && chown redis:redis /data
COPY --from=build /src/target/release/pubsubd /usr/local/bin/pubsubd
# Compose files and charts that run `redis-server …` keep working.
RUN ln -s pubsubd /usr/local/bin/redis-server
COPY docker/defaults.conf /etc/pubsubd/defaults.conf
COPY docker/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PUBSUBD_DEFAULTS=/etc/pubsubd/defaults.conf
WORKDIR /data
USER redis:redis
EXPOSE 6379
# PING on the ports the server (PID 1) listens on, whatever the config says; +PONG, or -NOAUTH
# when a password is set, is healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["pubsubd", "--health-check"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["pubsubd"]
