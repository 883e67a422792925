import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { forgetSessions, mountWidget, sessionStorageKey, type WidgetHandle } from '@/widget/mount'
import { fakeFetch, json, sseResponse } from './helpers'

const API = 'https://kf.example.com'
const OTHER_API = 'https://kf.other.example'
const key = (userId: string | null, api = API) => sessionStorageKey(api, userId)
const saved = (id: string) => JSON.stringify({ id, token: `tok-${id}` })
const flush = () => new Promise((r) => setTimeout(r, 0))

function answer(sessionId: string, text = '满 99 包邮') {
  return json({
    session_id: sessionId,
    session_token: `tok-${sessionId}`,
    message_id: `b-${sessionId}`,
    intent: null,
    confidence: 0.9,
    reply: { type: 'answer', text, suggestions: [], faq_id: 1, quick_replies: [] },
    handoff: { status: 'none' },
  })
}

/** Type `text` into the open panel's composer and send it. */
function say(shadow: ShadowRoot, text: string) {
  const input = shadow.querySelector<HTMLTextAreaElement>('textarea#xk-input')!
  input.value = text
  input.dispatchEvent(new Event('input'))
  shadow.querySelector('form.xk-composer')!.dispatchEvent(new Event('submit', { cancelable: true }))
}

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

/** The API side of a saved conversation the widget resumes and chats on in. */
function savedConversation(sessionId: string) {
  return {
    [`GET /api/v1/sessions/${sessionId}/history`]: () => history(sessionId),
    [`GET /api/v1/sessions/${sessionId}/events`]: () => sseResponse([]),
    'POST /api/v1/chat': () => answer(sessionId),
  }
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

  // A single-page shop logs its shopper in without a page load: XiaoKeWidget.login(id, signature).
  const SIG = `1767225600.${'ab'.repeat(32)}`
  const SIG2 = `1767312000.${'cd'.repeat(32)}`
  const ends = (f: ReturnType<typeof fakeFetch>) =>
    f.calls.filter((c) => c.method === 'DELETE').map((c) => [c.path, c.headers.get('X-Session-Token')])
  const turns = (f: ReturnType<typeof fakeFetch>) => f.calls.filter((c) => c.path === '/api/v1/chat')

  it("login() ends the anonymous conversation, and the next message starts the shopper's, saved under their key", async () => {
    localStorage.setItem(key(null), saved('anon'))
    const f = fakeFetch({
      'GET /api/v1/sessions/anon/history': () => history('anon'),
      'GET /api/v1/sessions/anon/events': () => sseResponse([]),
      'DELETE /api/v1/sessions/anon': () => new Response(null, { status: 204 }),
      'POST /api/v1/chat': () => answer('s2', '已发货'),
      'GET /api/v1/sessions/s2/events': () => sseResponse([]),
    })
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, open: true })
    await flush()
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!
    expect(shadow.textContent).toContain('SF123')

    handle.login('u_1002', SIG)
    await flush()

    expect(ends(f)).toEqual([['/api/v1/sessions/anon', 'tok-anon']]) // with the anonymous session's own token
    expect(localStorage.getItem(key(null))).toBeNull()
    expect(shadow.textContent).not.toContain('SF123')
    expect(shadow.querySelector('.xk-panel')).not.toBeNull() // the panel stays open

    say(shadow, '我的订单到哪了')
    await vi.waitFor(() => expect(localStorage.getItem(key('u_1002'))).toBe(saved('s2')))
    expect(turns(f)).toHaveLength(1)
    expect(turns(f)[0].body).toMatchObject({ message: '我的订单到哪了', session_id: null, user_id: 'u_1002', user_signature: SIG })
    expect(turns(f)[0].headers.get('X-Session-Token')).toBeNull()
    expect(localStorage.getItem(key(null))).toBeNull()
  })

  it('login() with the signed-in id only refreshes the signature: the conversation goes on', async () => {
    localStorage.setItem(key('u_1001'), saved('s1001'))
    const f = fakeFetch(savedConversation('s1001'))
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, userId: 'u_1001', userSignature: SIG, open: true })
    await flush()
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!

    handle.login('u_1001', SIG2) // the shop re-signed its shopper (the old signature is about to expire)
    await flush()

    expect(ends(f)).toEqual([])
    expect(f.calls.filter((c) => c.path.endsWith('/history'))).toHaveLength(1) // not restored again
    expect(shadow.textContent).toContain('SF123')
    expect(localStorage.getItem(key('u_1001'))).toBe(saved('s1001'))
    say(shadow, '运费多少')
    await vi.waitFor(() => expect(turns(f)).toHaveLength(1))
    expect(turns(f)[0].body).toMatchObject({ session_id: 's1001', user_id: 'u_1001', user_signature: SIG2 })
    expect(turns(f)[0].headers.get('X-Session-Token')).toBe('tok-s1001')
  })

  it("login() resumes the shopper's saved conversation", async () => {
    const f = fakeFetch(savedConversation('s1001'))
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, open: true })
    await flush()
    // the shopper chatted signed in, in another tab of the shop (or before a page load)
    localStorage.setItem(key('u_1001'), saved('s1001'))

    handle.login('u_1001', SIG)
    await flush()

    expect(f.calls.map((c) => c.path)).toContain('/api/v1/sessions/s1001/history')
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!
    expect(shadow.textContent).toContain('SF123')
    say(shadow, '运费多少')
    await vi.waitFor(() => expect(turns(f)).toHaveLength(1))
    expect(turns(f)[0].body).toMatchObject({ session_id: 's1001', user_id: 'u_1001', user_signature: SIG })
  })

  it('login() refuses what the API would refuse, and changes nothing', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined)
    localStorage.setItem(key('u_1001'), saved('s1001'))
    const f = fakeFetch(savedConversation('s1001'))
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, userId: 'u_1001', userSignature: SIG, open: true })
    await flush()

    const bad: [unknown, unknown][] = [
      ['', SIG],
      ['u_1002', ''],
      ['u_1002', null],
      [1002, SIG],
      ['u'.repeat(129), SIG],
      ['u_1002', 's'.repeat(129)],
    ]
    for (const [id, sig] of bad) handle.login(id as string, sig as string)
    await flush()

    expect(warn).toHaveBeenCalledTimes(bad.length)
    expect(warn.mock.calls[0][0]).toContain('XiaoKeWidget.login')
    expect(ends(f)).toEqual([])
    expect(localStorage.getItem(key('u_1001'))).toBe(saved('s1001'))
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!
    say(shadow, '运费多少')
    await vi.waitFor(() => expect(turns(f)).toHaveLength(1))
    expect(turns(f)[0].body).toMatchObject({ session_id: 's1001', user_id: 'u_1001', user_signature: SIG })

    handle.login('u'.repeat(128), 's'.repeat(128)) // the longest the API takes
    expect(warn).toHaveBeenCalledTimes(bad.length)
  })

  it("login() while the visitor's messages are on their way: none of them goes out as the new shopper", async () => {
    let release!: () => void
    const f = fakeFetch({
      'POST /api/v1/chat': async (_url, init) => {
        const first = !JSON.parse(init.body!).user_id
        if (first) await new Promise<void>((r) => (release = r)) // the anonymous visitor's first turn is slow
        return answer(first ? 'anon' : 's2')
      },
      'GET /api/v1/sessions/s2/events': () => sseResponse([]),
    })
    vi.stubGlobal('fetch', f.impl)
    handle = mountWidget({ api: API, open: true })
    await flush()
    const shadow = document.querySelector('[data-xiaoke]')!.shadowRoot!
    say(shadow, '地址改一下')
    await vi.waitFor(() => expect(turns(f)).toHaveLength(1))
    say(shadow, '改成北京市朝阳区') // queued behind the first

    handle.login('u_1002', SIG)
    release()
    await flush()
    await flush()

    // the anonymous turns are dropped: the one in flight (its new session is ended), the queued one is never sent
    expect(turns(f).map((c) => c.body)).toEqual([expect.objectContaining({ message: '地址改一下', user_id: null })])
    expect(ends(f)).toEqual([['/api/v1/sessions/anon', 'tok-anon']])
    expect(localStorage.getItem(key('u_1002'))).toBeNull()
    expect(shadow.textContent).not.toContain('满 99 包邮')

    say(shadow, '我的订单到哪了') // the shopper's own first message starts their conversation
    await vi.waitFor(() => expect(localStorage.getItem(key('u_1002'))).toBe(saved('s2')))
    expect(turns(f).slice(1).map((c) => c.body)).toEqual([
      expect.objectContaining({ message: '我的订单到哪了', session_id: null, user_id: 'u_1002', user_signature: SIG }),
    ])
  })
})
