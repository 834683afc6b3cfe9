# EaseEmail Notifications: one image for every role; the container arguments choose it
# (api | worker | migrate | any other `easeemail` subcommand). See DESIGN.md section 7.
#
#   docker build -t easeemail:0.1.0 .
#   docker run --rm easeemail:0.1.0 --help

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------
# build: all dependencies, the generated Prisma client, tsc → dist/
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# No update notices or telemetry calls from npm and Prisma during the build.
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false CHECKPOINT_DISABLE=1
COPY package.json package-lock.json ./
# Install scripts are skipped on purpose (npm 11 skips them anyway): the build runs `prisma generate` itself.
RUN npm ci --ignore-scripts
COPY prisma.config.ts tsconfig.json tsconfig.build.json ./
COPY prisma ./prisma
# Prisma's native schema engine is not needed to generate the client (and cannot be downloaded offline).
RUN PRISMA_SCHEMA_ENGINE_BINARY=/bin/true npx prisma generate
COPY app ./app
RUN npm run build
# Production dependencies only; --omit=optional also drops the Prisma CLI and its tree, which npm
# otherwise keeps as @prisma/client's optional peer. The npm cache stays behind in this stage.
RUN npm prune --omit=dev --omit=optional --ignore-scripts

# ---------------------------------------------------------------------------------------------
# runtime: node, tini, production node_modules, dist/, migrations; nothing to compile with
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM to the app and reaps zombies (Node does neither as PID 1);
# npm and corepack are removed because the runtime never installs anything.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /root/.npm /home/node/.npm
ENV NODE_ENV=production
WORKDIR /app
# Files stay owned by root: the app (uid 1000) can read its code but never change it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The migration runner finds prisma/migrations next to package.json (app/paths.ts walks up to it).
COPY --from=build /app/prisma/migrations ./prisma/migrations
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# `easeemail` on PATH: main.js carries a node shebang, and node resolves the symlink to find its modules.
RUN chmod 0755 /app/dist/app/main.js /usr/local/bin/docker-entrypoint.sh \
 && ln -s /app/dist/app/main.js /usr/local/bin/easeemail
# Numeric (uid:gid of user node), so Kubernetes' runAsNonRoot can verify it even without runAsUser.
USER 1000:1000
EXPOSE 8000 8001
# No curl in the image: the entrypoint finds this container's role (api or worker) and runs
# `easeemail healthcheck <role>` against its live endpoint; other roles have no endpoint to probe.
HEALTHCHECK --interval=10s --timeout=5s --start-period=90s --retries=3 CMD ["docker-entrypoint.sh", "healthcheck"]
ENTRYPOINT ["tini", "--", "docker-entrypoint.sh"]
CMD ["api"]
