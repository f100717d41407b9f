import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The web console: plain TypeScript on the SDK, served by the gateway at /console/ (src/http/console-files.ts). */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
});
