# The pingora-router image. Build from the repository root:
#   docker build -f deploy/docker/pingora-router.Dockerfile -t cellbench/pingora-router:dev .
FROM rust:1-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq cmake >/dev/null
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p pingora-router --bin pingora-router

FROM debian:bookworm-slim
COPY --from=build /src/target/release/pingora-router /usr/local/bin/pingora-router
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/pingora-router"]
