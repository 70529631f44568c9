# The controlplane image. Build from the repository root:
#   docker build -f deploy/docker/controlplane.Dockerfile -t cellbench/controlplane:dev .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/controlplane ./controlplane

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/controlplane /usr/local/bin/controlplane
ENTRYPOINT ["/usr/local/bin/controlplane"]
