# Switchboard gateway image: build with the dev toolchain, run with production dependencies only.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Sources are not here yet: skip the `prepare` build that `npm ci` would run.
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/console/dist ./console/dist
COPY bin ./bin
COPY config ./config
USER node
EXPOSE 8080
# Exec form: the gateway itself receives SIGTERM and drains (sockets closed with 1001, consumers handed over).
CMD ["node", "dist/src/main.js"]
