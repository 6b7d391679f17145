# syntax=docker/dockerfile:1
#
# pubsubd as a drop-in for the official Redis image:
#   docker run -p 6379:6379 IMAGE
#   docker run IMAGE pubsubd --requirepass x          (or: docker run IMAGE --requirepass x)
#   docker run -v ./redis.conf:/usr/local/etc/redis/redis.conf IMAGE pubsubd /usr/local/etc/redis/redis.conf
# Listens on every interface by default (docker/defaults.conf), as the official image does;
# a mounted redis.conf or flags override that. Runs as the non-root user `redis` (uid 999).
#
# Two images from this file:
#   docker build -t pubsubd .                              Debian slim (the default, last stage)
#   docker build --target minimal -t pubsubd:minimal .     a static musl binary on `scratch`:
#       the same server, defaults, uid and health check, but no shell, so the command is
#       pubsubd's arguments only (`docker run IMAGE --requirepass x`, `… IMAGE /path/redis.conf`)
# The minimal stages come first so that the classic builder, which builds every stage before the
# target, does not compile the Debian image's binary for `--target minimal` (BuildKit builds only
# the stages the target needs).

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

# A static musl build for the minimal image, allocating through mimalloc (musl's allocator
# takes one lock for every thread: fan-out ran at a third of the glibc build's speed on it).
# musl-tools gives the C code of ring and mimalloc a musl compiler; rustup adds the target (a
# no-op when the builder image already has it).
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build-static
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN target="$(uname -m)-unknown-linux-musl" \
    && export "CC_$(uname -m)_unknown_linux_musl=musl-gcc" \
    && mkdir -p src/bin/pubsubd \
    && echo 'fn main() {}' > src/bin/pubsubd/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --bin pubsubd --target "$target" --features mimalloc \
    && rm -rf src target/*/release/.fingerprint/pubsubd-* target/*/release/deps/pubsubd-* target/*/release/deps/libpubsubd-*
COPY src ./src
# scratch has no users or directories: the same `redis` user and group (999) as the Debian image,
# and its home /data (under /owned, to be copied with its owner).
RUN target="$(uname -m)-unknown-linux-musl" \
    && export "CC_$(uname -m)_unknown_linux_musl=musl-gcc" \
    && cargo build --release --locked --bin pubsubd --target "$target" --features mimalloc \
    && mkdir -p /rootfs/usr/local/bin /rootfs/etc /owned/data \
    && cp "target/$target/release/pubsubd" /rootfs/usr/local/bin/pubsubd \
    && strip /rootfs/usr/local/bin/pubsubd \
    && /rootfs/usr/local/bin/pubsubd --version \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nredis:x:999:999::/data:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nredis:x:999:\n' > /rootfs/etc/group
COPY docker/defaults.conf /rootfs/etc/pubsubd/defaults.conf

FROM scratch AS minimal
COPY --from=build-static /rootfs/ /
COPY --from=build-static --chown=999:999 /owned/ /
ENV PATH=/usr/local/bin PUBSUBD_DEFAULTS=/etc/pubsubd/defaults.conf
WORKDIR /data
USER redis:redis
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["pubsubd", "--health-check"]
# pubsubd is PID 1 and handles SIGTERM itself; the arguments are its own.
ENTRYPOINT ["pubsubd"]

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

FROM debian:${DEBIAN_RELEASE}-slim AS debian
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
# when a password is set, is healthy (with REDIS_PASSWORD or REDIS_PASSWORD_FILE the probe
# authenticates first and expects +PONG).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["pubsubd", "--health-check"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["pubsubd"]
