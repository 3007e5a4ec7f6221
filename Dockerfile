# Two stages: build with the Rust toolchain (release profile: LTO, stripped),
# run as an unprivileged user on a slim Debian base.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin snag

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin snag
COPY --from=build /src/target/release/snag /usr/local/bin/snag
USER snag
ENV SNAG_BIND=0.0.0.0:9000
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:9000/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/snag"]
CMD ["serve"]
