# syntax=docker/dockerfile:1
# One image for both Fly apps. The landing app `where` runs the default command (dist/where.mjs).
# Every Useless Machine in the app `useless-machine` is created from this same image by the Machines
# API with config.init.cmd = ["node", "dist/useless.mjs"] (WM_VM_CMD), so a VM always runs the build
# of the landing app that launched it. Checked statically by test/integration/deploy/flytoml.test.ts.

ARG NODE_VERSION=22
FROM node:${NODE_VERSION}-slim AS base
WORKDIR /app

# ---- build: every dependency, bundle with esbuild, then drop the dev dependencies ----------------
FROM base AS build
COPY package.json package-lock.json ./
# esbuild is a devDependency; say so explicitly in case NODE_ENV=production ever moves into `base`.
RUN npm ci --include=dev --no-audit --no-fund
# What scripts/build.mjs bundles: src/ and the charts in machines/ (src imports ../machines).
COPY tsconfig.json ./
COPY scripts ./scripts
COPY machines ./machines
COPY src ./src
RUN npm run build && npm prune --omit=dev

# ---- runtime: the bundles and the production dependencies, nothing else ----------------------------
FROM base AS runtime
ENV NODE_ENV=production
# Owned by root and only readable by the app: the process cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The only place the app writes: the file event store (WM_DATA_DIR) used when NATS_URL is unset.
# fly.toml mounts a volume at /data for it (the root filesystem is reset on every deploy); the
# mount point exists and belongs to the app's user so a fresh volume is writable. /app/.data is
# the default outside Fly.
RUN mkdir -p /app/.data /data && chown node:node /app/.data /data
# The `node` user (uid 1000) ships with the official image.
USER node
# 8080: public listener (behind Fly's proxy). 4001: private API and /debug (6PN only, no public
# service). 4040: a Useless Machine's port (the same image runs in useless-machine).
EXPOSE 8080 4001 4040
# No HEALTHCHECK: Fly does not run Docker and ignores it; the check lives in fly.toml.
# node as the process itself (not npm start), so SIGTERM from Fly reaches the app's handler.
CMD ["node", "dist/where.mjs"]
