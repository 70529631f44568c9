# The harness image: attack, barrier and merge (and a shell, for the merge
# Job's wait for every share). Build from the repository root:
#   docker build -f deploy/docker/harness.Dockerfile -t cellbench/harness:dev .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/harness ./harness

# The harness runs from a repository root: go.mod, the scenarios and the
# configs they name.
FROM debian:bookworm-slim
WORKDIR /cellbench
COPY go.mod ./
COPY scenarios/ scenarios/
COPY config/ config/
COPY --from=build /out/harness /usr/local/bin/harness
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/harness"]
