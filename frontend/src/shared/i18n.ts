import { ref, type Ref } from 'vue'

export type Locale = 'zh-CN' | 'en-US'
export type Messages = { [key: string]: string | readonly string[] | Messages }

/** Pick the locale from an explicit setting, then the browser; Chinese is the default. */
export function detectLocale(explicit?: string | null, nav: string | undefined = globalThis.navigator?.language): Locale {
  const v = (explicit || nav || '').toLowerCase()
  if (explicit && v.startsWith('en')) return 'en-US'
  if (explicit) return 'zh-CN'
  return v.startsWith('en') ? 'en-US' : 'zh-CN'
}

function lookupRaw(messages: Messages, key: string): unknown {
  let node: unknown = messages
  for (const part of key.split('.')) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[part]
  }
  return node
}

function lookup(messages: Messages, key: string): string | undefined {
  const v = lookupRaw(messages, key)
  return typeof v === 'string' ? v : undefined
}

export interface I18n {
  locale: Ref<Locale>
  t: (key: string, params?: Record<string, string | number>) => string
  /** A list of strings (e.g. starter questions). */
  tl: (key: string) => string[]
}

/** A deliberately tiny i18n (the widget must stay small): dotted keys, `{name}` placeholders. */
export function createI18n(catalog: Record<Locale, Messages>, initial: Locale): I18n {
  const locale = ref<Locale>(initial)
  const t = (key: string, params?: Record<string, string | number>): string => {
    const raw = lookup(catalog[locale.value], key) ?? lookup(catalog['zh-CN'], key) ?? key
    return params ? raw.replace(/\{(\w+)\}/g, (_, n: string) => (n in params ? String(params[n]) : `{${n}}`)) : raw
  }
  const tl = (key: string): string[] => {
    const v = lookupRaw(catalog[locale.value], key) ?? lookupRaw(catalog['zh-CN'], key)
    return Array.isArray(v) ? v.map(String) : []
  }
  return { locale, t, tl }
}

/** Server messages are "中文 / English": show the half that matches the locale. */
export function pickBilingual(message: string, locale: Locale): string {
  const parts = message.split(' / ')
  if (parts.length < 2) return message
  return locale === 'en-US' ? parts.slice(1).join(' / ') : parts[0]
}
