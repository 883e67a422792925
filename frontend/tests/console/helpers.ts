import { createPinia, setActivePinia, type Pinia } from 'pinia'
import ElementPlus from 'element-plus'
import { createRouter, createMemoryHistory, type Router } from 'vue-router'
import { createConsoleApi } from '@/api/console'
import type { Faq } from '@/api/types'
import { createI18n } from '@/shared/i18n'
import zhCN from '@/locales/console/zh-CN'
import enUS from '@/locales/console/en-US'
import { CONSOLE_API, CONSOLE_I18N } from '@/console/context'
import { routes } from '@/console/router'

export function consoleGlobals(fetchImpl: typeof fetch, token: () => string | null = () => 'tok') {
  const pinia: Pinia = createPinia()
  setActivePinia(pinia)
  const router: Router = createRouter({ history: createMemoryHistory(), routes })
  const api = createConsoleApi({ baseUrl: 'http://api.test', token, onUnauthorized: () => undefined, fetch: fetchImpl })
  const i18n = createI18n({ 'zh-CN': zhCN, 'en-US': enUS }, 'zh-CN')
  return {
    pinia,
    router,
    api,
    i18n,
    global: { plugins: [pinia, router, ElementPlus], provide: { [CONSOLE_API as symbol]: api, [CONSOLE_I18N as symbol]: i18n } },
  }
}

/** One FAQ as the API returns it (the console specs' shared fixture). */
export function sampleFaq(): Faq {
  return {
    id: 'faq-025',
    question: '运费怎么收？满多少包邮？',
    answer: '满 99 包邮。',
    category: '物流配送',
    similar: ['包邮吗'],
    enabled: true,
    intent: 'logistics',
    version: 3,
    created_at: '2026-11-24T10:00:00Z',
    updated_at: '2026-11-24T10:00:00Z',
  } as Faq
}
