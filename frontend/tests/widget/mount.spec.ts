import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { forgetSessions, mountWidget, sessionStorageKey, type WidgetHandle } from '@/widget/mount'
import { fakeFetch, json, sseResponse } from './helpers'

const API = 'https://kf.example.com'
const OTHER_API = 'https://kf.other.example'
const key = (userId: string | null, api = API) => sessionStorageKey(api, userId)
const saved = (id: string) => JSON.stringify({ id, token: `tok-${id}` })
const flush = () => new Promise((r) => setTimeout(r, 0))

function history(sessionId: string) {
  return json({
    session_id: sessionId,
    handoff: { status: 'none' },
    messages: [
      { id: 'u1', role: 'user', text: '订单 1234567890123 到哪了', created_at: '2026-11-24T10:00:00Z' },
      { id: 'b1', role: 'bot', text: '已发货，顺丰 SF123', created_at: '2026-11-24T10:00:01Z' },
    ],
  })
}

describe('mountWidget and saved sessions', () => {
  let handle: WidgetHandle | null = null
  beforeEach(() => localStorage.clear())
  afterEach(() => {
    handle?.destroy()
    handle = null
    vi.restoreAllMocks()
    vi.unstubAllGlobals()
    localStorage.clear()
  })

  it("removes other shoppers' saved sessions of this API on mount, and keeps the current one and other APIs'", async () => {
    localStorage.setItem(key(null), saved('anon')) // a visitor before the login
    localStorage.setItem(key('u_1001'), saved('s1001')) // the previous shopper on this computer
    localStorage.setItem(key('u_1002'), saved('s1002')) // the current one
    localStorage.setItem(key('u_1001', OTHER_API), saved('o1'))
    localStorage.setItem(key(null, OTHER_API), saved('o2'))
    localStorage.setItem(key(null, `${API}:8443`), saved('o3')) // another API, however alike its key
    localStorage.setItem('shop.cart', '[1,2]')
    const f = fakeFetch({
      'GET /api/v1/sessions/s1002/history': () => history('s1002'),
      'GET /api/v1/sessions/s1002/events': () => sseResponse([]),
    })
    vi.stubGlobal('fetch', f.impl)

    handle = mountWidget({ api: `${API}/`, userId: 'u_1002', userSignature: 'sig' })
    await flush()

    expect(localStorage.getItem(key(null))).toBeNull()
    expect(localStorage.getItem(key('u_1001'))).toBeNull()
    expect(localStorage.getItem(key('u_1002'))).toBe(saved('s1002'))
    expect(localStorage.getItem(key('u_1001', OTHER_API))).toBe(saved('o1'))
    expect(localStorage.getItem(key(null, OTHER_API))).toBe(saved('o2'))
    expect(localStorage.getItem(key(null, `${API}:8443`))).toBe(saved('o3'))
    expect(localStorage.getItem('shop.cart')).toBe('[1,2]')
    expect(f.calls.map((c) => c.path)).toContain('/api/v1/sessions/s1002/history') // the current one is resumed
  })

  it('mounts where storage cannot be used (privacy mode, blocked storage)', () => {
    vi.spyOn(globalThis, 'localStorage', 'get').mockImplementation(() => {
      throw new DOMException('The operation is insecure.', 'SecurityError')
    })
    handle = mountWidget({ api: API, userId: 'u_1002', userSignature: 'sig' })
    expect(document.querySelector('[data-xiaoke]')?.shadowRoot?.querySelector('.xk-launcher')).not.toBeNull()

    const broken = {
      get length(): number {
        throw new DOMException('denied', 'SecurityError')
      },
      key: () => null,
      getItem: () => null,
      removeItem: () => undefined,
    }
    expect(forgetSessions(API, null, broken)).toEqual([])
  })

  it('logout() ends the conversation, forgets every saved session of this API and chats on anonymously', async () => {
    localStorage.setItem(key('u_1001'), saved('s1001'))
    localStorage.setItem(key(null, OTHER_API), saved('o2'))
    const f = fakeFetch({
      'GET /api/v1/sessions/s1001/history': () => history('s1001'),
      'GET /api/v1/sessions/s1001/events': () => sseResponse([]),
      'POST /api/v1/chat': () =>
        json({
          session_id: 's9',
          session_token: 'tok9',
          message_id: 'b9',
          intent: null,
          confidence: 0.9,
          reply: { type: 'answer', text: '满 99 包邮', suggestions: [], faq_id: 1, quick_replies: [] },
          handoff: { status: 'none' },
        }),
      'GET /api/v1/sessions/s9/events': () => sseResponse([]),
    })
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, userId: 'u_1001', userSignature: 'sig', open: true })
    await flush()
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!
    expect(shadow.querySelectorAll('.xk-msg--user')).toHaveLength(1)

    localStorage.setItem(key(null), saved('tab2')) // another tab of the shop, opened before the login

    handle.logout()
    await flush()

    expect(shadow.querySelectorAll('.xk-msg--user, .xk-msg--bot:not(.xk-welcome)')).toHaveLength(0)
    expect(shadow.textContent).not.toContain('SF123')
    expect(localStorage.getItem(key('u_1001'))).toBeNull()
    expect(localStorage.getItem(key(null))).toBeNull()
    expect(localStorage.getItem(key(null, OTHER_API))).toBe(saved('o2'))
    // and ended on the server, each with its own token, so none keeps working (the DELETEs fail here: ignored)
    const ends = f.calls.filter((c) => c.method === 'DELETE').map((c) => [c.path, c.headers.get('X-Session-Token')])
    expect(ends.sort()).toEqual([
      ['/api/v1/sessions/s1001', 'tok-s1001'],
      ['/api/v1/sessions/tab2', 'tok-tab2'],
    ])

    // the next visitor's message starts an anonymous conversation, saved under the anonymous key
    const input = shadow.querySelector<HTMLTextAreaElement>('textarea#xk-input')!
    input.value = '包邮吗'
    input.dispatchEvent(new Event('input'))
    shadow.querySelector('form.xk-composer')!.dispatchEvent(new Event('submit', { cancelable: true }))
    await vi.waitFor(() => expect(localStorage.getItem(key(null))).toBe(JSON.stringify({ id: 's9', token: 'tok9' })))
    const turn = f.calls.find((c) => c.path === '/api/v1/chat')!
    expect(turn.body).toMatchObject({ message: '包邮吗', session_id: null, user_id: null, user_signature: null })
    expect(turn.headers.get('X-Session-Token')).toBeNull()
  })
})
