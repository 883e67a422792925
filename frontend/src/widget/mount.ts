import { createApp, type App as VueApp } from 'vue'
import { createPinia } from 'pinia'
import { WidgetApi } from '@/api/widget'
import { createI18n, detectLocale, type Locale } from '@/shared/i18n'
import zhCN from '@/locales/widget/zh-CN'
import enUS from '@/locales/widget/en-US'
import css from './widget.css?inline'
import App from './App.vue'
import { API_KEY, CONFIG_KEY, I18N_KEY, type WidgetConfig } from './context'
import { useChatStore } from './store'

export interface MountOptions {
  /** API origin, e.g. https://kf.example.com (no trailing slash needed). */
  api: string
  lang?: string | null
  /** The shop's id of its signed-in shopper, and the shop's signature of it (made by the shop's backend with the
   *  API's identity secret): only a verified visitor's orders are looked up. */
  userId?: string | null
  userSignature?: string | null
  maxChars?: number
  /** Open the panel right away. */
  open?: boolean
}

export interface WidgetHandle {
  open(): void
  close(): void
  destroy(): void
  readonly locale: Locale
}

/**
 * Constructable stylesheets are not inline styles, so a host page whose CSP forbids 'unsafe-inline' styles
 * still renders the widget; older browsers get a <style> element.
 */
function adoptStyles(shadow: ShadowRoot, text: string, doc: Document) {
  try {
    if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet !== 'undefined' && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet()
      sheet.replaceSync(text)
      shadow.adoptedStyleSheets = [sheet]
      return
    }
  } catch {
    /* fall back below */
  }
  const style = doc.createElement('style')
  style.textContent = text
  shadow.appendChild(style)
}

/**
 * Where the conversation is kept, per API and per signed-in shopper: a session belongs to the identity it was
 * started with, so after a logout (or another shopper's login on the same browser) the widget starts a new one
 * instead of resuming the previous shopper's conversation and orders.
 */
export function sessionStorageKey(apiBase: string, userId: string | null): string {
  const base = `xiaoke.session.v1:${apiBase}`
  return userId ? `${base}:user:${userId}` : base
}

/** Mount the widget into its own shadow root so the host page's CSS cannot reach it (and vice versa). */
export function mountWidget(opts: MountOptions, doc: Document = document): WidgetHandle {
  const host = doc.createElement('div')
  host.id = 'xiaoke-widget'
  host.setAttribute('data-xiaoke', '')
  doc.body.appendChild(host)
  const shadow = host.attachShadow({ mode: 'open' })
  adoptStyles(shadow, css, doc)
  const el = doc.createElement('div')
  shadow.appendChild(el)

  const apiBase = opts.api.replace(/\/+$/, '')
  const userId = opts.userId || null
  const config: WidgetConfig = {
    apiBase,
    storageKey: sessionStorageKey(apiBase, userId),
    maxChars: opts.maxChars ?? 1000,
    userId,
    userSignature: opts.userSignature || null,
  }
  const locale = detectLocale(opts.lang)
  const app: VueApp = createApp(App)
  const pinia = createPinia()
  app.use(pinia)
  app.provide(API_KEY, new WidgetApi(apiBase))
  app.provide(I18N_KEY, createI18n({ 'zh-CN': zhCN, 'en-US': enUS }, locale))
  app.provide(CONFIG_KEY, config)
  app.mount(el)
  const store = useChatStore(pinia)
  if (opts.open) store.open = true
  return {
    open: () => (store.open = true),
    close: () => (store.open = false),
    destroy: () => {
      app.unmount()
      host.remove()
    },
    locale,
  }
}
