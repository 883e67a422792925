import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { WidgetApi } from '@/api/widget'
import { useChat } from '@/widget/composables/useChat'
import { sessionStorageKey, type MountOptions } from '@/widget/mount'
import { fakeFetch, i18n, json, memoryStorage, sseResponse } from './helpers'

// The shop's signed-in shopper: its id and the shop backend's signature of it (api/identity.py).
const USER = 'u_1001'
const SIGNATURE = `1767225600.${'ab'.repeat(32)}`

function chatReply(over: Record<string, unknown> = {}) {
  return {
    session_id: 's1',
    session_token: 'tok1',
    message_id: 'b1',
    intent: 'order_status',
    confidence: 0.9,
    reply: { type: 'slot_prompt', text: '请提供订单号', suggestions: [], faq_id: null, quick_replies: [] },
    handoff: { status: 'none' },
    ...over,
  }
}

describe('visitor identity', () => {
  beforeEach(() => setActivePinia(createPinia()))
  afterEach(() => vi.restoreAllMocks())

  it('sends the signed-in shopper and the shop signature with the turn that starts the conversation', async () => {
    const config = { apiBase: 'http://api.test', storageKey: 'xk', maxChars: 100, userId: USER, userSignature: SIGNATURE }
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply({ identity: 'verified' })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: memoryStorage(), sleep: () => Promise.resolve() })
    await chat.send('我的订单到哪了')
    expect(f.calls[0].body).toMatchObject({ message: '我的订单到哪了', session_id: null, user_id: USER, user_signature: SIGNATURE })
    chat.stopEvents()
  })

  it('tells the shop developer, not the visitor, when the API rejected the signature', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const config = { apiBase: 'http://api.test', storageKey: 'xk', maxChars: 100, userId: USER, userSignature: 'expired' }
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply({ identity: 'rejected' })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: memoryStorage(), sleep: () => Promise.resolve() })
    await chat.send('你好')
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('data-user-signature'))
    expect(chat.store.notice).toBeNull() // the visitor chats on
    expect(chat.store.messages.map((m) => m.role)).toEqual(['user', 'bot'])
    chat.stopEvents()
  })

  it('keeps one conversation per signed-in shopper: another login (or a logout) does not resume it', () => {
    const api = 'https://kf.example.com'
    expect(sessionStorageKey(api, null)).toBe('xiaoke.session.v1:https://kf.example.com')
    expect(sessionStorageKey(api, USER)).not.toBe(sessionStorageKey(api, null))
    expect(sessionStorageKey(api, USER)).not.toBe(sessionStorageKey(api, 'u_1002'))
  })
})

/** Replace mountWidget (for the next import of main.ts): the options each mount is called with. */
function recordMounts(): MountOptions[] {
  const seen: MountOptions[] = []
  vi.doMock('@/widget/mount', async (importOriginal) => ({
    ...(await importOriginal<typeof import('@/widget/mount')>()),
    mountWidget: (opts: MountOptions) => {
      seen.push(opts)
      return { open() {}, close() {}, destroy() {}, logout() {}, login() {}, locale: 'zh-CN' }
    },
  }))
  return seen
}

describe('script tag', () => {
  afterEach(() => {
    vi.restoreAllMocks() // document.currentScript / readyState
    vi.doUnmock('@/widget/mount')
    vi.resetModules()
    document.querySelectorAll('script[data-api]').forEach((s) => s.remove())
  })

  it('passes data-user-id and data-user-signature to the widget', async () => {
    const seen: MountOptions[] = []
    vi.doMock('@/widget/mount', () => ({
      mountWidget: (opts: MountOptions) => {
        seen.push(opts)
        return { open() {}, close() {}, destroy() {}, locale: 'zh-CN' }
      },
    }))
    const script = document.createElement('script')
    script.dataset.api = 'https://kf.example.com'
    script.dataset.userId = USER
    script.dataset.userSignature = SIGNATURE
    document.body.appendChild(script)
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(script)
    await import('@/widget/main')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ api: 'https://kf.example.com', userId: USER, userSignature: SIGNATURE })
  })

  it('XiaoKeWidget.logout() ends the conversation, and still forgets the saved session after destroy()', async () => {
    const logout = vi.fn()
    vi.doMock('@/widget/mount', async (importOriginal) => ({
      ...(await importOriginal<typeof import('@/widget/mount')>()),
      mountWidget: () => ({ open() {}, close() {}, destroy() {}, logout, locale: 'zh-CN' }),
    }))
    const script = document.createElement('script')
    script.dataset.api = 'https://kf.example.com/'
    script.dataset.userId = USER
    document.body.appendChild(script)
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(script)
    const widget = await import('@/widget/main')
    widget.logout()
    expect(logout).toHaveBeenCalledTimes(1)

    widget.destroy() // a single-page shop took the widget down first
    localStorage.setItem(sessionStorageKey('https://kf.example.com', USER), JSON.stringify({ id: 's1', token: 'tok1' }))
    const f = fakeFetch({ 'DELETE /api/v1/sessions/s1': () => new Response(null, { status: 204 }) })
    vi.stubGlobal('fetch', f.impl)
    widget.logout()
    expect(localStorage.getItem(sessionStorageKey('https://kf.example.com', USER))).toBeNull()
    await vi.waitFor(() => expect(f.calls).toHaveLength(1)) // and the session is ended on the server
    expect(f.calls[0].headers.get('X-Session-Token')).toBe('tok1')
    vi.unstubAllGlobals()
  })

  it('XiaoKeWidget.login() before the widget is mounted (page still loading) is the identity it mounts with', async () => {
    const seen = recordMounts()
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    const script = document.createElement('script')
    script.dataset.api = 'https://kf.example.com'
    document.body.appendChild(script) // rendered for an anonymous visitor
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(script)
    vi.spyOn(document, 'readyState', 'get').mockReturnValue('loading')
    const widget = await import('@/widget/main')

    widget.login('u_1002', SIGNATURE)
    widget.login('', SIGNATURE) // refused (warned), the valid one stays
    expect(seen).toHaveLength(0)
    document.dispatchEvent(new Event('DOMContentLoaded'))

    expect(warn).toHaveBeenCalledTimes(1)
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ api: 'https://kf.example.com', userId: 'u_1002', userSignature: SIGNATURE })
  })

  it('XiaoKeWidget.logout() before the widget is mounted mounts it anonymously, whatever the embed said', async () => {
    const seen = recordMounts()
    const script = document.createElement('script')
    script.dataset.api = 'https://kf.example.com'
    script.dataset.userId = USER // a cached page of the shopper who is logging out
    script.dataset.userSignature = SIGNATURE
    document.body.appendChild(script)
    vi.spyOn(document, 'currentScript', 'get').mockReturnValue(script)
    vi.spyOn(document, 'readyState', 'get').mockReturnValue('loading')
    const widget = await import('@/widget/main')

    widget.login('u_1002', SIGNATURE)
    widget.logout()
    document.dispatchEvent(new Event('DOMContentLoaded'))

    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ userId: null, userSignature: null })
  })
})
