# syntax=docker/dockerfile:1.7
# kcache-serve gateway: gRPC API (kcache.v1.Generation) on PORT, health + Prometheus metrics on HTTP_PORT.
# Build from the repository root:  docker build -f deploy/docker/gateway.Dockerfile -t kcache-serve/gateway .
# Run:  docker run -p 50051:50051 -p 8080:8080 -e REDIS_URL=redis://redis:6379 -v /path/to/models:/models:ro kcache-serve/gateway

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests first, so `npm ci` is cached until the lockfile changes.
COPY package.json package-lock.json .npmrc ./
COPY libs/kcache/package.json libs/kcache/
COPY libs/proto/package.json libs/proto/
COPY libs/kcache-bench/package.json libs/kcache-bench/
COPY apps/gateway/package.json apps/gateway/
COPY apps/worker/package.json apps/worker/
COPY apps/loadgen/package.json apps/loadgen/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY libs/kcache libs/kcache
COPY libs/proto libs/proto
COPY apps/gateway apps/gateway
# The project tsconfigs have no references to each other: build the libs first, in order.
RUN npx tsc -b libs/kcache libs/proto apps/gateway \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /models
ENV NODE_ENV=production \
    PORT=50051 \
    HTTP_PORT=8080 \
    REDIS_URL=redis://redis:6379 \
    MODEL=/models/stories260K
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/libs/kcache/package.json libs/kcache/
COPY --from=build /app/libs/kcache/dist libs/kcache/dist
COPY --from=build /app/libs/proto/package.json libs/proto/
COPY --from=build /app/libs/proto/dist libs/proto/dist
COPY --from=build /app/libs/proto/proto libs/proto/proto
COPY --from=build /app/apps/gateway/package.json apps/gateway/
COPY --from=build /app/apps/gateway/dist apps/gateway/dist
# Files stay root-owned and read-only to the app; it runs as the image's unprivileged `node` user.
USER node
EXPOSE 50051 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "apps/gateway/dist/main.js"]
