import { createApp } from 'vue'
import { createPinia } from 'pinia'
import 'element-plus/dist/index.css'
import { createConsoleApi } from '@/api/console'
import { createI18n, detectLocale, type Locale } from '@/shared/i18n'
import zhCN from '@/locales/console/zh-CN'
import enUS from '@/locales/console/en-US'
import App from './App.vue'
import { installElement } from './element'
import { CONSOLE_API, CONSOLE_I18N } from './context'
import { createConsoleRouter } from './router'
import { useAuthStore } from './stores/auth'
import './console.css'

const LOCALE_KEY = 'xiaoke.console.locale'
const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
const router = createConsoleRouter(pinia)
const auth = useAuthStore(pinia)

let saved: string | null = null
try {
  saved = localStorage.getItem(LOCALE_KEY)
} catch {
  /* ignore */
}
const i18n = createI18n({ 'zh-CN': zhCN, 'en-US': enUS }, saved ? detectLocale(saved) : 'zh-CN')
i18n.locale.value satisfies Locale

const api = createConsoleApi({
  baseUrl: (import.meta.env.VITE_API_BASE as string | undefined) ?? window.location.origin,
  token: () => auth.token,
  onUnauthorized: () => {
    if (!auth.token) return
    auth.signOut()
    void router.replace({ name: 'login', query: { redirect: router.currentRoute.value.fullPath, expired: '1' } })
  },
})

app.provide(CONSOLE_API, api)
app.provide(CONSOLE_I18N, i18n)
app.provide('xiaoke.localeKey', LOCALE_KEY)
installElement(app)
app.use(router)
app.mount('#app')
