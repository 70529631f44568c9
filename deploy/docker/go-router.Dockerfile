# The go-router image. Build from the repository root:
#   docker build -f deploy/docker/go-router.Dockerfile -t cellbench/go-router:dev .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/go-router ./go-router

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/go-router /usr/local/bin/go-router
ENTRYPOINT ["/usr/local/bin/go-router"]
