import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  // mounting Element Plus views takes seconds on a loaded 2-core machine: 5 s (the default) flaked there
  test: { environment: 'happy-dom', include: ['tests/**/*.spec.ts'], testTimeout: 20_000 },
})
