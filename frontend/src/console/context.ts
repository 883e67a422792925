import { inject, type InjectionKey } from 'vue'
import type { ConsoleApi } from '@/api/console'
import { ApiError } from '@/api/http'
import { pickBilingual, type I18n } from '@/shared/i18n'
import zhCN from '@/locales/console/zh-CN'

export const CONSOLE_API: InjectionKey<ConsoleApi> = Symbol('xiaoke-console-api')
export const CONSOLE_I18N: InjectionKey<I18n> = Symbol('xiaoke-console-i18n')

export function useApi(): ConsoleApi {
  const api = inject(CONSOLE_API)
  if (!api) throw new Error('console api not provided')
  return api
}

export function useT(): I18n {
  const i18n = inject(CONSOLE_I18N)
  if (!i18n) throw new Error('console i18n not provided')
  return i18n
}

/** A user-facing message for any failure: our locale first, then the server's bilingual message. */
export function errorMessage(i18n: I18n, e: unknown): string {
  if (e instanceof ApiError) {
    const key = `errors.${e.code}`
    const known = i18n.t(key)
    if (known !== key) return known
    if (e.message) return pickBilingual(e.message, i18n.locale.value)
  }
  return i18n.t('errors.generic')
}

/** The intent ids the locale files name (the default intent model's labels); a retrained model may add others. */
export const KNOWN_INTENTS: readonly string[] = Object.keys(zhCN.intents)

/** Display name of an intent id (the demo intents have names in the locale files; any other id shows as is). */
export function intentLabel(i18n: I18n, id: string | null | undefined): string {
  if (!id) return '—'
  const key = `intents.${id}`
  const name = i18n.t(key)
  return name === key ? id : name
}
