# The server on Node 24: the image's own node, run directly (no npm in front, so SIGTERM reaches
# the server and its exit status is the container's). Everything runs from TypeScript sources
# through tsx, as in development. test/unit/compose.test.ts checks this file.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Without dev dependencies, so also without the `node` package: `node` is the image's Node 24.
RUN npm ci --omit=dev && npm cache clean --force
COPY tsconfig.json ./
COPY gen ./gen
COPY src ./src
# The image's unprivileged user: the server reads its files and writes nothing but tsx's cache in /tmp.
USER node
EXPOSE 50051 8080
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/main.ts"]
