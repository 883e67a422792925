import { createApp, type App as VueApp } from 'vue'
import { createPinia } from 'pinia'
import { WidgetApi, type SessionCredentials } from '@/api/widget'
import { createI18n, detectLocale, type Locale } from '@/shared/i18n'
import zhCN from '@/locales/widget/zh-CN'
import enUS from '@/locales/widget/en-US'
import css from './widget.css?inline'
import App from './App.vue'
import { API_KEY, CONFIG_KEY, I18N_KEY, type WidgetConfig } from './context'
import { safeStorage } from './composables/useChat'
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
  /** The shop's shopper logged out: end the conversation (event stream, saved session, messages) and chat on
   *  anonymously. */
  logout(): void
  /** The shop's shopper logged in without a page load (a single-page shop): chat as them from now on. The same id
   *  again only takes the new signature (the shop re-signed it); another one ends the conversation on screen as
   *  logout() does and resumes that shopper's saved one, if any. Input the API would refuse is warned about in the
   *  console and changes nothing. No effect after destroy(). */
  login(userId: string, userSignature: string): void
  readonly locale: Locale
}

/** What the API takes (api/schemas.py ChatRequest: `user_id`, `user_signature` at most 128 characters). */
const MAX_IDENTITY_CHARS = 128

/**
 * Whether login(userId, userSignature) may use these: non-empty strings the API would take. Anything else (a
 * shop's bug: an id from a failed login call, a number, a token where the signature belongs) is warned about in
 * the console and refused, so that the widget keeps the identity it has instead of chatting under a broken one.
 */
export function acceptableIdentity(userId: unknown, userSignature: unknown): boolean {
  const ok = (v: unknown) => typeof v === 'string' && v.trim() !== '' && [...v].length <= MAX_IDENTITY_CHARS
  if (ok(userId) && ok(userSignature)) return true
  console.warn(
    `XiaoKe widget: XiaoKeWidget.login(userId, userSignature) needs two non-empty strings of at most ${MAX_IDENTITY_CHARS} characters (the shop's id of its shopper and its backend's signature of it); the identity is unchanged`,
  )
  return false
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

/**
 * Remove the sessions saved for this API except `keep` (all of them when null). A session of an identity that is
 * not the page's any more (the shopper logged out, or another one logged in on a shared computer) would never be
 * resumed, but its token would stay in localStorage for good, and with it whoever uses the browser next could read
 * that conversation, orders included, through the history endpoint for as long as the API keeps the session.
 * Other APIs' sessions are left alone. Storage that cannot be read is no reason not to mount.
 * -> the credentials removed (for endSavedSessions; on mount they are only forgotten, not ended: another tab may
 * still be chatting in one, as the visitor it was before the login).
 */
export function forgetSessions(
  apiBase: string,
  keep: string | null,
  storage: Pick<Storage, 'length' | 'key' | 'getItem' | 'removeItem'> | null = safeStorage(),
): SessionCredentials[] {
  const anonymous = sessionStorageKey(apiBase, null)
  const signedIn = `${anonymous}:user:`
  const removed: SessionCredentials[] = []
  try {
    if (!storage) return removed
    const stale: string[] = []
    for (let i = 0; i < storage.length; i++) {
      const key = storage.key(i)
      if (key !== null && key !== keep && (key === anonymous || key.startsWith(signedIn))) stale.push(key)
    }
    for (const key of stale) {
      // not while iterating: removal renumbers the keys
      const saved = parseSaved(storage.getItem(key))
      storage.removeItem(key)
      if (saved) removed.push(saved)
    }
  } catch {
    /* storage disabled: nothing was saved either */
  }
  return removed
}

function parseSaved(raw: string | null): SessionCredentials | null {
  try {
    const v = raw ? (JSON.parse(raw) as Partial<SessionCredentials>) : null
    return v && typeof v.id === 'string' && typeof v.token === 'string' ? { id: v.id, token: v.token } : null
  } catch {
    return null
  }
}

/**
 * The shopper logged out: forget every session of this API saved in this browser (another tab's too) and end each
 * on the server, best effort (not awaited, failures ignored), so that none of their tokens keeps working.
 */
export function endSavedSessions(apiBase: string, api: WidgetApi = new WidgetApi(apiBase)): void {
  for (const session of forgetSessions(apiBase, null)) api.endSession(session).catch(() => undefined)
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
  forgetSessions(apiBase, config.storageKey)
  const locale = detectLocale(opts.lang)
  const app: VueApp = createApp(App)
  const pinia = createPinia()
  app.use(pinia)
  const api = new WidgetApi(apiBase)
  app.provide(API_KEY, api)
  app.provide(I18N_KEY, createI18n({ 'zh-CN': zhCN, 'en-US': enUS }, locale))
  app.provide(CONFIG_KEY, config)
  const root = app.mount(el) as InstanceType<typeof App>
  const store = useChatStore(pinia)
  if (opts.open) store.open = true
  let destroyed = false
  /** Chat as `userId` from now on: the next conversation starts with this identity (config is read per turn) and
   *  is saved under its key. */
  const become = (userId: string | null, userSignature: string | null) => {
    config.userId = userId
    config.userSignature = userSignature
    config.storageKey = sessionStorageKey(apiBase, userId)
  }
  return {
    open: () => (store.open = true),
    close: () => (store.open = false),
    destroy: () => {
      destroyed = true
      app.unmount()
      host.remove()
    },
    logout: () => {
      root.logout()
      // the signature vouches for the shopper who logged out: the next message must not start a conversation as them
      become(null, null)
      endSavedSessions(apiBase, api) // and what another tab of this shop saved
    },
    login: (userId, userSignature) => {
      if (destroyed || !acceptableIdentity(userId, userSignature)) return
      if (userId === config.userId) {
        // a re-signed shopper: the conversation is theirs already (a running one keeps the identity it started with)
        config.userSignature = userSignature
        return
      }
      // The conversation on screen is the previous identity's (anonymous, or another shopper on a shared computer):
      // it ends here and on the server as on logout, and the new shopper does not see it.
      root.logout()
      become(userId, userSignature)
      // as on mount: only the current identity's session stays saved (another tab's are forgotten, not ended)
      forgetSessions(apiBase, config.storageKey)
      void root.restore() // this shopper's conversation, if this browser has one saved
    },
    locale,
  }
}
