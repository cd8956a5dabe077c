# syntax=docker/dockerfile:1
# The execwatch agent image. The builder runs the same npm scripts a developer runs; the runtime
# stage holds only what the agent loads: dist/, production node_modules, the addon, the BPF
# object and the browse page files.
#   docker build -t execwatch .        (or: skaffold dev)
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm AS builder
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

FROM node:${NODE_VERSION}-bookworm-slim
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
