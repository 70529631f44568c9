# The mockbackends image. Build from the repository root:
#   docker build -f deploy/docker/mockbackends.Dockerfile -t cellbench/mockbackends:dev .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/mockbackends ./mockbackends

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mockbackends /usr/local/bin/mockbackends
ENTRYPOINT ["/usr/local/bin/mockbackends"]
