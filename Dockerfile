# The server on Node 24. Everything runs from TypeScript sources through tsx, as in development.
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY buf.yaml buf.gen.yaml tsconfig.json ./
COPY proto ./proto
COPY gen ./gen
COPY src ./src
EXPOSE 50051 8080
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/main.ts"]
