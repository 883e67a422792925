/**
 * Embed: <script src="https://kf.example.com/widget.js" data-api="https://kf.example.com" defer></script>
 * Attributes: data-api (defaults to the script's origin), data-lang (zh-CN | en-US), data-user-id +
 * data-user-signature (the shop's signed-in shopper, signed by the shop's backend: docs/operations.md "Verifying
 * visitors"), data-open ("true" opens the panel on load). `window.XiaoKeWidget.open()` / `.close()` control it;
 * the shop calls `window.XiaoKeWidget.logout()` when its shopper logs out, and a single-page shop calls
 * `window.XiaoKeWidget.login(userId, userSignature)` when one logs in (the page, and so the embed, is not rendered
 * again).
 */
import { acceptableIdentity, endSavedSessions, mountWidget, type WidgetHandle } from './mount'

const script = document.currentScript as HTMLScriptElement | null
let handle: WidgetHandle | null = null
/** The identity login()/logout() set before the widget was mounted (the page was still loading): newer than the
 *  embed's data-user-id, which the page was rendered with. */
let identity: { userId: string | null; userSignature: string | null } | null = null

function apiFromScript(s: HTMLScriptElement | null): string {
  const explicit = s?.dataset.api
  if (explicit) return explicit
  try {
    if (s?.src) return new URL(s.src, location.href).origin
  } catch {
    /* fall through */
  }
  return location.origin
}

function start() {
  if (handle || document.querySelector('[data-xiaoke]')) return
  handle = mountWidget({
    api: apiFromScript(script),
    lang: script?.dataset.lang ?? null,
    userId: identity ? identity.userId : (script?.dataset.userId ?? null),
    userSignature: identity ? identity.userSignature : (script?.dataset.userSignature ?? null),
    open: script?.dataset.open === 'true',
  })
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, { once: true })
else start()

export function open() {
  handle?.open()
}
export function close() {
  handle?.close()
}
export function destroy() {
  handle?.destroy()
  handle = null
}
/** The shop's shopper logged out: end their conversation and its saved session (here and on the server), also
 *  when the widget was destroyed before (or is not mounted yet). */
export function logout() {
  if (handle) {
    handle.logout()
    return
  }
  endSavedSessions(apiFromScript(script).replace(/\/+$/, ''))
  identity = { userId: null, userSignature: null } // not mounted yet: mount anonymously, whatever the embed says
}
/** The shop's shopper logged in without a page load: chat as them (WidgetHandle.login). Before the widget is
 *  mounted, the identity is kept for the mount; after destroy() there is no widget left to chat in, and the next
 *  page load's embed carries the identity. */
export function login(userId: string, userSignature: string) {
  if (handle) handle.login(userId, userSignature)
  else if (acceptableIdentity(userId, userSignature)) identity = { userId, userSignature }
}
