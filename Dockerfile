# syntax=docker/dockerfile:1
# storehook as one binary in a small Debian image (Fly.io builds this; so can
# `docker build .`). Stage 1 compiles better-sqlite3 and builds the single
# executable; stage 2 holds only that file, CA certificates and Litestream.

FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts yet (prepare needs the sources); then only the two
# packages the binary needs built: the SQLite addon and esbuild.
RUN npm ci --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3 esbuild
COPY . .
RUN npm run build:binary && ./dist/storehook --version

# Litestream, optional at run time (switched on by LITESTREAM_REPLICA_URL).
ARG LITESTREAM_VERSION=0.3.13
ARG TARGETARCH=amd64
RUN curl -fsSL -o /tmp/litestream.deb \
      "https://github.com/benbjohnson/litestream/releases/download/v${LITESTREAM_VERSION}/litestream-v${LITESTREAM_VERSION}-linux-${TARGETARCH}.deb" \
 && dpkg -i /tmp/litestream.deb

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin storehook
COPY --from=build /src/dist/storehook /usr/local/bin/storehook
COPY --from=build /usr/bin/litestream /usr/local/bin/litestream
COPY deploy/litestream.yml /etc/litestream.yml
COPY deploy/entrypoint.sh /usr/local/bin/storehook-entrypoint
ENV PORT=8080 \
    HOST=0.0.0.0 \
    DATABASE_PATH=/data/storehook.db
EXPOSE 8080
VOLUME /data
# storehook closes gracefully on SIGTERM and SIGINT (Fly sends its kill_signal).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/storehook-entrypoint"]
CMD ["serve"]
