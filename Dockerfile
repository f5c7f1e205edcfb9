# syntax=docker/dockerfile:1
# The container image of pickup's Fargate roles (`pickup fetcher`, `pickup
# projector`): `make image`. A static binary on distroless, run as non-root.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a code change reuses the downloaded dependencies.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Set by BuildKit to the platform being built (docker buildx build
# --platform linux/arm64 for ARM64 tasks); empty means the builder's own.
ARG TARGETOS TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w" -o /out/pickup ./cmd/pickup

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/pickup /pickup
USER nonroot:nonroot
# /metrics, /healthz and /readyz (PICKUP_ADMIN_ADDR).
EXPOSE 9464
ENTRYPOINT ["/pickup"]
