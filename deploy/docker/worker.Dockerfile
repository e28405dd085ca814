# syntax=docker/dockerfile:1.7
# kcache-serve worker: takes generation jobs from Redis (BullMQ) and runs the KCache engine (onnxruntime, CPU).
# Health (/healthz, /readyz) and Prometheus metrics (/metrics) on METRICS_PORT.
# The host tier (V cache, HOST_TIER=shared) is one file in HOST_TIER_DIR that every worker of the node maps, on a tmpfs: mount one there (compose: a tmpfs volume; k8s: emptyDir Memory).
# Build from the repository root:  docker build -f deploy/docker/worker.Dockerfile -t kcache-serve/worker .

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# node-gyp's toolchain for the shared host tier's addon (libs/kcache/native).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY libs/kcache/package.json libs/kcache/
COPY libs/proto/package.json libs/proto/
COPY libs/kcache-bench/package.json libs/kcache-bench/
COPY apps/gateway/package.json apps/gateway/
COPY apps/worker/package.json apps/worker/
COPY apps/loadgen/package.json apps/loadgen/
# .npmrc: onnxruntime-node-install=skip (use the CPU binaries shipped in the npm package, download nothing).
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json ./
COPY libs/kcache libs/kcache
COPY libs/proto libs/proto
COPY libs/kcache-bench libs/kcache-bench
COPY apps/worker apps/worker
RUN npx tsc -b libs/kcache libs/proto apps/worker \
 && bash libs/kcache/scripts/build-native.sh \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /models
ENV NODE_ENV=production \
    METRICS_PORT=9090 \
    REDIS_URL=redis://redis:6379 \
    MODEL=/models/stories260K \
    HOST_TIER=shared \
    HOST_TIER_DIR=/dev/shm/kcache
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/libs/kcache/package.json libs/kcache/
COPY --from=build /app/libs/kcache/dist libs/kcache/dist
COPY --from=build /app/libs/kcache/native/build/Release/kcache_shm.node libs/kcache/native/build/Release/
COPY --from=build /app/libs/proto/package.json libs/proto/
COPY --from=build /app/libs/proto/dist libs/proto/dist
COPY --from=build /app/apps/worker/package.json apps/worker/
COPY --from=build /app/apps/worker/dist apps/worker/dist
USER node
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9090)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# SIGTERM (via tini) lets the worker finish or hand back its in-flight jobs: see terminationGracePeriodSeconds in k8s.
CMD ["node", "apps/worker/dist/main.js"]
