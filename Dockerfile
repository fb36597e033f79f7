# fleetstream container image (ECS/Fargate). Build: docker build -t fleetstream .
FROM rust:1.85-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p processor \
 && cp target/release/fleetstream /fleetstream

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/fleetstream --create-home fleetstream
COPY --from=build /fleetstream /usr/local/bin/fleetstream
COPY config /etc/fleetstream
USER fleetstream
WORKDIR /var/lib/fleetstream
# ECS sends SIGTERM and waits stopTimeout (30 s by default): keep shutdown.deadline below it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/fleetstream"]
CMD ["run", "--config", "/etc/fleetstream/local.toml", "--log-format", "json"]
