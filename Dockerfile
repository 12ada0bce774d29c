# One small image with both binaries: rbac-proxy (the sidecar) and
# rbac-proxy-injector (the webhook). Build: make docker-image (needs a Docker
# engine); make image builds the same image without Docker (internal/image),
# and test/image checks the two agree.
# Base images are named without a registry host; your daemon's default applies.

FROM golang:1.26 AS build
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY proxy/ proxy/
COPY webhook/ webhook/
COPY internal/ internal/
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
RUN go build -trimpath -ldflags "-s -w -X github.com/rbac-proxy/rbac-proxy/internal/version.Version=${VERSION}" -o /out/rbac-proxy ./cmd/proxy \
 && go build -trimpath -ldflags "-s -w -X github.com/rbac-proxy/rbac-proxy/internal/version.Version=${VERSION}" -o /out/rbac-proxy-injector ./cmd/webhook

# scratch: static binaries need nothing but CA roots (for https upstreams).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="rbac-proxy" \
      org.opencontainers.image.description="Kubernetes authentication and authorization in front of metrics endpoints, and the webhook that injects it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/rbac-proxy /rbac-proxy
COPY --from=build /out/rbac-proxy-injector /rbac-proxy-injector
# The same non-root user the injected proxy container runs as (65532).
USER 65532:65532
ENTRYPOINT ["/rbac-proxy"]
