import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The embeddable widget: one self-contained IIFE file (styles are injected into a shadow root, so no .css
// file is emitted) plus the demo host page copied from widget-public/.
export default defineConfig({
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  publicDir: 'widget-public',
  define: {
    'process.env.NODE_ENV': JSON.stringify('production'),
    __VUE_OPTIONS_API__: 'false',
    __VUE_PROD_DEVTOOLS__: 'false',
    __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false',
  },
  build: {
    outDir: 'dist/widget',
    emptyOutDir: true,
    target: 'es2019',
    cssCodeSplit: false,
    lib: {
      entry: fileURLToPath(new URL('./src/widget/main.ts', import.meta.url)),
      name: 'XiaoKeWidget',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
})
