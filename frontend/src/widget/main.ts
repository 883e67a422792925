/**
 * Embed: <script src="https://kf.example.com/widget.js" data-api="https://kf.example.com" defer></script>
 * Attributes: data-api (defaults to the script's origin), data-lang (zh-CN | en-US), data-user-id +
 * data-user-signature (the shop's signed-in shopper, signed by the shop's backend: docs/operations.md "Verifying
 * visitors"), data-open ("true" opens the panel on load). `window.XiaoKeWidget.open()` / `.close()` control it;
 * the shop calls `window.XiaoKeWidget.logout()` when its shopper logs out.
 */
import { endSavedSessions, mountWidget, type WidgetHandle } from './mount'

const script = document.currentScript as HTMLScriptElement | null
let handle: WidgetHandle | null = null

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
    userId: script?.dataset.userId ?? null,
    userSignature: script?.dataset.userSignature ?? null,
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
  if (handle) handle.logout()
  else endSavedSessions(apiFromScript(script).replace(/\/+$/, ''))
}
