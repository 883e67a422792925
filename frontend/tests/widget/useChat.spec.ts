import { beforeEach, describe, expect, it, vi } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { WidgetApi } from '@/api/widget'
import { useChat } from '@/widget/composables/useChat'
import { fakeFetch, i18n, json, memoryStorage, sseResponse } from './helpers'

const config = { apiBase: 'http://api.test', storageKey: 'xk', maxChars: 50, userId: null, userSignature: null }
const noSleep = () => Promise.resolve()
const flush = () => new Promise((r) => setTimeout(r, 0))

function chatReply(over: Record<string, unknown> = {}) {
  return {
    session_id: 's1',
    session_token: 'tok1',
    message_id: 'b1',
    intent: 'faq',
    confidence: 0.6,
    reply: { type: 'suggest', text: '请问您想了解哪一项？', suggestions: ['运费怎么算', '包邮吗'], faq_id: null, quick_replies: [] },
    ...over,
  }
}

describe('useChat', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('creates a session on the first turn, stores it, and sends its token afterwards', async () => {
    const storage = memoryStorage()
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply()),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.send('  运费  ')
    expect(f.calls[0].body).toMatchObject({ message: '运费', session_id: null, user_id: null })
    expect(JSON.parse(storage.getItem('xk')!)).toEqual({ id: 's1', token: 'tok1' })
    const [user, bot] = chat.store.messages
    expect(user).toMatchObject({ role: 'user', text: '运费', status: 'sent' })
    expect(bot).toMatchObject({ role: 'bot', id: 'b1', suggestions: ['运费怎么算', '包邮吗'], replyType: 'suggest' })

    await chat.send('运费怎么算')
    const second = f.calls.filter((c) => c.path === '/api/v1/chat')[1]
    expect(second.body).toMatchObject({ session_id: 's1' })
    expect(second.headers.get('X-Session-Token')).toBe('tok1')
    chat.stopEvents()
  })

  it('retries, then shows the offline state and lets the user resend', async () => {
    let up = false
    const f = fakeFetch({
      'POST /api/v1/chat': () => {
        if (!up) throw new TypeError('Failed to fetch')
        return json(chatReply({ session_token: 'tok1' }))
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep, retries: 2 })
    await chat.send('在吗')
    expect(f.calls.filter((c) => c.path === '/api/v1/chat')).toHaveLength(3)
    expect(chat.store.connection).toBe('offline')
    expect(chat.store.messages).toHaveLength(1)
    expect(chat.store.messages[0].status).toBe('failed')

    up = true
    await chat.reconnect()
    // every attempt of the turn, automatic retries and the resend alike, carries one client_message_id, so the
    // API answers a turn that did get through (response lost on the way back) again instead of running it twice
    const ids = f.calls.filter((c) => c.path === '/api/v1/chat').map((c) => (c.body as { client_message_id: string }).client_message_id)
    expect(ids).toHaveLength(4)
    expect(new Set(ids)).toEqual(new Set([chat.store.messages[0].key]))
    expect(ids[0]).toMatch(/^[A-Za-z0-9_-]{8,64}$/)
    expect(chat.store.connection).toBe('online')
    expect(chat.store.messages.map((m) => [m.role, m.status])).toEqual([
      ['user', 'sent'],
      ['bot', 'sent'],
    ])
    chat.stopEvents()
  })

  it('shows a localized error for client errors without retrying', async () => {
    const f = fakeFetch({
      'POST /api/v1/chat': () => json({ error: { code: 'RATE_LIMITED', message: '请求过于频繁 / Too many', request_id: 'r' } }, 429),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep, retries: 0 })
    await chat.send('你好')
    expect(chat.store.notice).toBe('您发送得太快了，请稍后再试')
    expect(chat.store.connection).toBe('online')
  })

  it('waits as long as Retry-After asks before resending a rate-limited turn, and says how long when it is too long', async () => {
    let limited = 1
    const f = fakeFetch({
      'POST /api/v1/chat': () =>
        limited-- > 0
          ? new Response(JSON.stringify({ error: { code: 'RATE_LIMITED', message: '', request_id: 'r' } }), {
              status: 429,
              headers: { 'Content-Type': 'application/json', 'Retry-After': '3' },
            })
          : json(chatReply({ session_token: null })),
    })
    const waits: number[] = []
    const sleep = (ms: number) => (waits.push(ms), Promise.resolve())
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep })
    await chat.send('你好')
    expect(waits).toHaveLength(1)
    expect(waits[0]).toBeGreaterThanOrEqual(3000) // backoff alone would be 300–600 ms
    expect(chat.store.messages.map((m) => m.status)).toEqual(['sent', 'sent'])

    limited = 5
    const f2 = fakeFetch({
      'POST /api/v1/chat': () =>
        new Response(JSON.stringify({ error: { code: 'RATE_LIMITED', message: '', request_id: 'r' } }), {
          status: 429,
          headers: { 'Content-Type': 'application/json', 'Retry-After': '120' },
        }),
    })
    waits.length = 0
    const chat2 = useChat({ api: new WidgetApi(config.apiBase, f2.impl), i18n: i18n(), config, storage: null, sleep })
    await chat2.send('你好')
    expect(f2.calls).toHaveLength(1) // two minutes is not sat out behind a spinner
    expect(waits).toEqual([])
    expect(chat2.store.notice).toBe('您发送得太快了，请 120 秒后再试')
    expect(chat2.store.messages.at(-1)!.status).toBe('failed')
  })

  it('refuses messages over the length limit before calling the API', async () => {
    const f = fakeFetch({})
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    await chat.send('长'.repeat(51))
    expect(f.calls).toHaveLength(0)
    expect(chat.store.notice).toContain('50')
  })

  it('restores history after a reload and clears an expired session', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': (_u, init) =>
        init.headers.get('X-Session-Token') === 'tok1'
          ? json({
              session_id: 's1',
              handoff: { status: 'active' },
              messages: [
                { id: 'u1', role: 'user', text: '查订单', created_at: '2026-11-24T10:00:00Z', reply_type: null, suggestions: [], faq_id: null },
                { id: 'a1', role: 'agent', text: '您好，我是客服小王', created_at: '2026-11-24T10:01:00Z', reply_type: null, suggestions: [], faq_id: null },
              ],
            })
          : json({ error: { code: 'SESSION_NOT_FOUND', message: 'x' } }, 404),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    expect(chat.store.messages.map((m) => m.role)).toEqual(['user', 'agent'])
    expect(chat.store.handoff).toBe('active')
    chat.stopEvents()

    setActivePinia(createPinia())
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'stale' }))
    const chat2 = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat2.restore()
    expect(chat2.store.messages).toHaveLength(0)
    expect(storage.getItem('xk')).toBeNull()
  })

  it('receives agent messages and hand-off changes over SSE, once each', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => json({ session_id: 's1', handoff: { status: 'waiting' }, messages: [] }),
      'GET /api/v1/sessions/s1/events': () =>
        sseResponse([
          ': keep-alive\n\n',
          'event: handoff\ndata: {"status":"active","agent":"小王"}\n\n',
          'event: message\ndata: {"id":"a9","role":"agent","text":"您好，请问订单号是多少？","created_at":"2026-11-24T10:00:00Z"}\n\n',
          'event: message\ndata: {"id":"a9","role":"agent","text":"您好，请问订单号是多少？","created_at":"2026-11-24T10:00:00Z"}\n\n',
        ]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await flush()
    await flush()
    expect(chat.store.handoff).toBe('active')
    expect(chat.store.messages.map((m) => [m.role, m.text])).toEqual([
      ['system', '人工客服 小王 已接入，正在为您服务'],
      ['agent', '您好，请问订单号是多少？'],
    ])
    expect(chat.store.unread).toBe(2)
    const ev = f.calls.find((c) => c.path.endsWith('/events'))!
    expect(ev.headers.get('X-Session-Token')).toBe('tok1')
    chat.stopEvents()
  })

  it('requests a human agent and sends feedback and the final rating with the session token', async () => {
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply({ reply: { type: 'answer', text: '满 99 包邮', suggestions: [], faq_id: 3, quick_replies: [] } })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'POST /api/v1/sessions/s1/handoff': () => json({ status: 'waiting', ticket_id: 't1' }),
      'POST /api/v1/feedback': () => new Response(null, { status: 204 }),
      'POST /api/v1/sessions/s1/rating': () => new Response(null, { status: 204 }),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    await chat.send('包邮吗')
    const bot = chat.store.messages[1]
    await chat.feedback(bot, 'down')
    await chat.feedback(bot, 'up') // second vote is ignored
    // with session_id the API checks the vote against this session (its recent turns), not a database row
    // that the journal may not have written yet
    expect(f.calls.filter((c) => c.path === '/api/v1/feedback').map((c) => c.body)).toEqual([{ message_id: 'b1', rating: 'down', session_id: 's1' }])
    expect(chat.store.messages[1].feedback).toBe('down')

    await chat.requestHandoff()
    expect(chat.store.handoff).toBe('waiting')
    expect(chat.store.messages.at(-1)).toMatchObject({ role: 'system', text: '已为您转接人工客服，请稍候…' })

    expect(await chat.rate(5, ' 很好 ')).toBe(true)
    const rating = f.calls.find((c) => c.path.endsWith('/rating'))!
    expect(rating.body).toEqual({ rating: 5, comment: '很好' })
    expect(rating.headers.get('X-Session-Token')).toBe('tok1')
    chat.stopEvents()
  })
  it('treats a hand-off *offer* as an offer: nobody is queued until the server says so', async () => {
    const replies = [
      chatReply({
        reply: { type: 'handoff', text: '非常抱歉…回复「转人工」即可。', suggestions: [], faq_id: null, quick_replies: ['转人工'] },
        intent: 'complaint',
        handoff: { status: 'none' },
      }),
      chatReply({
        session_token: null,
        message_id: 'b2',
        reply: { type: 'handoff', text: '正在为您转接人工客服，请稍候…', suggestions: [], faq_id: null, quick_replies: [] },
        intent: 'human_agent',
        handoff: { status: 'waiting' },
      }),
    ]
    let sse: (chunks: string[]) => void = () => {}
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(replies.shift()),
      'GET /api/v1/sessions/s1/events': () =>
        new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              sse = (chunks) => chunks.forEach((x) => c.enqueue(new TextEncoder().encode(x)))
            },
          }),
          { status: 200, headers: { 'Content-Type': 'text/event-stream' } },
        ),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    await chat.send('我要投诉，快递一直没到')
    expect(chat.store.handoff).toBe('none')
    expect(chat.store.withAgent).toBe(false) // the header 转人工 button stays enabled
    expect(chat.store.messages.map((m) => m.role)).toEqual(['user', 'bot'])
    expect(chat.store.messages[1].quickReplies).toEqual(['转人工'])

    await chat.send('转人工') // the quick reply: now a ticket is open
    expect(chat.store.handoff).toBe('waiting')
    expect(chat.store.withAgent).toBe(true)
    expect(chat.store.messages.map((m) => [m.role, m.role === 'system' ? m.text : m.replyType])).toEqual([
      ['user', null],
      ['bot', 'handoff'],
      ['user', null],
      ['bot', 'handoff'],
      ['system', '已为您转接人工客服，请稍候…'],
    ])
    // the same change announced over SSE afterwards is not shown twice
    await flush()
    sse(['event: handoff\ndata: {"status":"waiting"}\n\n'])
    await flush()
    await flush()
    expect(chat.store.messages.filter((m) => m.role === 'system')).toHaveLength(1)
    chat.stopEvents()
  })

  it('shows the waiting message once when the SSE event arrives before the chat response', async () => {
    const f = fakeFetch({
      'POST /api/v1/chat': () =>
        json(chatReply({ reply: { type: 'handoff', text: '正在为您转接人工客服', suggestions: [], faq_id: null, quick_replies: [] }, handoff: { status: 'waiting' } })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    chat.store.handoff = 'waiting' // as if the SSE `handoff` event had been handled first
    await chat.send('转人工')
    expect(chat.store.messages.filter((m) => m.role === 'system')).toHaveLength(0)
    expect(chat.store.handoff).toBe('waiting')
    chat.stopEvents()
  })

  it('sends turns one at a time: a quick second message joins the session the first one opened', async () => {
    const gates: (() => void)[] = []
    let n = 0
    const f = fakeFetch({
      'POST /api/v1/chat': async () => {
        const i = ++n
        await new Promise<void>((r) => gates.push(r))
        return json(chatReply({ message_id: `b${i}`, session_token: i === 1 ? 'tok1' : null }))
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    const first = chat.send('你好')
    const second = chat.send('我的订单到哪了')
    expect(chat.store.messages.map((m) => [m.text, m.status])).toEqual([
      ['你好', 'pending'],
      ['我的订单到哪了', 'pending'],
    ])
    await vi.waitFor(() => expect(gates).toHaveLength(1))
    await flush()
    expect(f.calls.filter((c) => c.path === '/api/v1/chat')).toHaveLength(1) // the second waits for the first
    gates.shift()!()
    await first
    await vi.waitFor(() => expect(gates).toHaveLength(1))
    gates.shift()!()
    await second
    const bodies = f.calls.filter((c) => c.path === '/api/v1/chat').map((c) => c.body)
    expect(bodies).toMatchObject([
      { message: '你好', session_id: null, user_id: null },
      { message: '我的订单到哪了', session_id: 's1', user_id: null },
    ])
    expect(chat.store.messages.map((m) => m.role)).toEqual(['user', 'user', 'bot', 'bot'])
    chat.stopEvents()
  })

  it('catches up on agent messages sent while the event stream was down', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let histories = 0
    let opens = 0
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => {
        histories++
        const messages =
          histories === 1
            ? []
            : [{ id: 'a7', role: 'agent', text: '您的订单已发货', created_at: '2026-11-24T10:03:00Z', reply_type: null, suggestions: [], faq_id: null }]
        return json({ session_id: 's1', handoff: { status: 'active' }, messages })
      },
      'GET /api/v1/sessions/s1/events': () => {
        opens++
        if (opens === 1)
          // the first stream drops at once (proxy timeout, Wi-Fi switch); the agent writes meanwhile
          return new Response(new ReadableStream({ start: (c) => c.close() }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
        return sseResponse([])
      },
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await vi.waitFor(() => expect(chat.store.messages.map((m) => [m.role, m.text])).toEqual([['agent', '您的订单已发货']]))
    expect(opens).toBe(2)
    chat.stopEvents()
  })

  it('tells the visitor when the event stream finds the session gone, and starts over on the next message', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    const gone = () => json({ error: { code: 'SESSION_NOT_FOUND', message: '会话不存在或已过期 / expired', request_id: 'r' } }, 404)
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => json({ session_id: 's1', handoff: { status: 'waiting' }, messages: [] }),
      'GET /api/v1/sessions/s1/events': gone, // e.g. the API restarted and lost its in-process sessions
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await vi.waitFor(() => expect(chat.store.session).toBeNull())
    expect(chat.store.notice).toBe('会话已过期，已为您开始新的对话')
    expect(chat.store.handoff).toBe('none') // no longer "queued" for an agent that will never come
    expect(storage.getItem('xk')).toBeNull()
  })

  it('asks for a human in a new conversation when the session expired', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 'old', token: 'tokOld' }))
    const f = fakeFetch({
      'GET /api/v1/sessions/old/history': () => json({ session_id: 'old', handoff: { status: 'none' }, messages: [] }),
      'GET /api/v1/sessions/old/events': () => sseResponse([]),
      'POST /api/v1/sessions/old/handoff': () => json({ error: { code: 'SESSION_NOT_FOUND', message: 'x', request_id: 'r' } }, 404),
      'POST /api/v1/chat': () =>
        json(chatReply({ reply: { type: 'handoff', text: '正在为您转接人工客服', suggestions: [], faq_id: null, quick_replies: [] }, handoff: { status: 'waiting' } })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await chat.requestHandoff()
    expect(f.calls.filter((c) => c.path === '/api/v1/chat').map((c) => c.body)).toMatchObject([{ message: '转人工', session_id: null, user_id: null }])
    expect(chat.store.session).toEqual({ id: 's1', token: 'tok1' })
    expect(chat.store.handoff).toBe('waiting')
    expect(chat.store.notice).not.toBe('转人工失败，请稍后再试')
    chat.stopEvents()
  })

  it('drops an expired session when feedback or the rating finds it gone', async () => {
    const storage = memoryStorage()
    const gone = () => json({ error: { code: 'SESSION_NOT_FOUND', message: 'x', request_id: 'r' } }, 404)
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply()),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'POST /api/v1/feedback': gone,
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.send('运费')
    await chat.feedback(chat.store.messages[1], 'up')
    expect(chat.store.messages[1].feedback).toBeNull()
    expect(chat.store.session).toBeNull() // the next message starts the new conversation the notice promises
    expect(storage.getItem('xk')).toBeNull()
    expect(chat.store.notice).toBe('会话已过期，已为您开始新的对话')
  })

  it('does not let a thumb on a reply of the expired conversation end the new one', async () => {
    const storage = memoryStorage()
    let expired = false
    const gone = () => json({ error: { code: 'SESSION_NOT_FOUND', message: '会话不存在或已过期 / expired', request_id: 'r' } }, 404)
    const f = fakeFetch({
      'POST /api/v1/chat': (_u, init) => {
        const body = JSON.parse(init.body!) as { session_id: string | null }
        if (body.session_id === 's1' && expired) return gone() // the 30-min TTL ran out
        return body.session_id === null && expired
          ? json(chatReply({ session_id: 's2', session_token: 'tok2', message_id: 'b2' }))
          : json(chatReply({ session_token: body.session_id ? null : 'tok1' }))
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'GET /api/v1/sessions/s2/events': () => sseResponse([]),
      // as the API does: b1 belongs to s1, whose token the widget no longer has; s2's token is refused for it
      'POST /api/v1/feedback': (_u, init) => {
        const body = JSON.parse(init.body!) as { message_id: string; session_id?: string }
        return body.message_id === 'b1' ? gone() : new Response(null, { status: 204 })
      },
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.send('运费')
    expired = true
    await chat.send('包邮吗') // starts the new conversation s2 and resends there
    expect(chat.store.session).toEqual({ id: 's2', token: 'tok2' })
    const [, oldReply, , newReply] = chat.store.messages
    expect([oldReply.id, newReply.id]).toEqual(['b1', 'b2'])
    expect(chat.canVote(oldReply)).toBe(false)

    await chat.feedback(oldReply, 'up')
    expect(chat.store.session).toEqual({ id: 's2', token: 'tok2' }) // still in the new conversation
    expect(JSON.parse(storage.getItem('xk')!)).toEqual({ id: 's2', token: 'tok2' })
    expect(f.calls.filter((c) => c.path === '/api/v1/feedback')).toHaveLength(0)
    expect(oldReply.feedback).toBeNull()

    await chat.feedback(newReply, 'down') // the current conversation's replies still take a vote, with its session
    expect(f.calls.filter((c) => c.path === '/api/v1/feedback').map((c) => c.body)).toEqual([{ message_id: 'b2', rating: 'down', session_id: 's2' }])
    expect(chat.store.session?.id).toBe('s2')
    chat.stopEvents()
  })

  it('keeps a message sent while the saved conversation is being restored, and sends it in that conversation', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let releaseHistory!: () => void
    const historyGate = new Promise<void>((r) => (releaseHistory = r))
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': async () => {
        await historyGate // a slow network: the panel is already open and the visitor clicks a starter
        return json({
          session_id: 's1',
          handoff: { status: 'none' },
          messages: [
            { id: 'u0', role: 'user', text: '在吗', created_at: '2026-11-24T10:00:00Z', reply_type: null, suggestions: [], faq_id: null },
            { id: 'b0', role: 'bot', text: '您好', created_at: '2026-11-24T10:00:01Z', reply_type: 'answer', suggestions: [], faq_id: null },
          ],
        })
      },
      'POST /api/v1/chat': () => json(chatReply({ session_token: null, message_id: 'b1' })),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    const restoring = chat.restore()
    const sending = chat.send('我的订单到哪了')
    await flush()
    releaseHistory()
    await restoring
    await sending
    expect(f.calls.filter((c) => c.path === '/api/v1/chat').map((c) => c.body)).toMatchObject([{ message: '我的订单到哪了', session_id: 's1' }])
    expect(chat.store.messages.map((m) => [m.role, m.text, m.status])).toEqual([
      ['user', '在吗', 'sent'],
      ['bot', '您好', 'sent'],
      ['user', '我的订单到哪了', 'sent'],
      ['bot', '请问您想了解哪一项？', 'sent'],
    ])
    expect(chat.store.session).toEqual({ id: 's1', token: 'tok1' })
    expect(JSON.parse(storage.getItem('xk')!)).toEqual({ id: 's1', token: 'tok1' })
    chat.stopEvents()
  })

  it('stores one end-of-chat rating however often 提交评价 is clicked while it is on its way', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const f = fakeFetch({
      'POST /api/v1/chat': () => json(chatReply()),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'POST /api/v1/sessions/s1/rating': async () => (await gate, new Response(null, { status: 204 })),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    await chat.send('谢谢')
    const first = chat.rate(5, '')
    const second = chat.rate(5, '')
    await flush()
    release()
    expect(await first).toBe(true)
    expect(await second).toBe(true)
    expect(f.calls.filter((c) => c.path.endsWith('/rating'))).toHaveLength(1)
    chat.stopEvents()
  })

  it('does not say an agent has left when the queued request was closed before anyone joined', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let push: (chunk: string) => void = () => {}
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => json({ session_id: 's1', handoff: { status: 'waiting' }, messages: [] }),
      'GET /api/v1/sessions/s1/events': () =>
        new Response(new ReadableStream<Uint8Array>({ start: (c) => void (push = (x) => c.enqueue(new TextEncoder().encode(x))) }), {
          status: 200,
          headers: { 'Content-Type': 'text/event-stream' },
        }),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await vi.waitFor(() => expect(f.calls.some((c) => c.path.endsWith('/events'))).toBe(true))
    await flush()
    // the agent console closed the ticket nobody took: the API says none, then sends dialog:handoff_unavailable
    push('event: handoff\ndata: {"status":"none"}\n\n')
    await vi.waitFor(() => expect(chat.store.handoff).toBe('none'))
    expect(chat.store.messages.map((m) => [m.role, m.text])).toEqual([['system', '人工客服暂时无法接入，小客智能助手继续为您服务']])

    push('event: handoff\ndata: {"status":"active","agent":"小王"}\n\n') // a later hand-off that an agent did take
    push('event: handoff\ndata: {"status":"none"}\n\n')
    await vi.waitFor(() => expect(chat.store.messages).toHaveLength(3))
    expect(chat.store.messages.at(-1)!.text).toBe('人工服务已结束，小客智能助手继续为您服务')
    chat.stopEvents()
  })

  it('moves a resent message to the end, where its reply appears and where the server stores it', async () => {
    let down = true
    let n = 0
    const f = fakeFetch({
      'POST /api/v1/chat': (_u, init) => {
        const body = JSON.parse(init.body!) as { message: string; session_id: string | null }
        if (down && body.message === '订单 123 到哪了') return json({ error: { code: 'SERVICE_UNAVAILABLE', message: '服务繁忙 / busy', request_id: 'r' } }, 503)
        n++
        return json(chatReply({ message_id: `b${n}`, session_token: body.session_id ? null : 'tok1', reply: { type: 'answer', text: `答 ${body.message}`, suggestions: [], faq_id: null, quick_replies: [] } }))
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep, retries: 0 })
    await chat.send('订单 123 到哪了')
    expect(chat.store.messages.map((m) => m.status)).toEqual(['failed'])
    await chat.send('运费怎么算')
    down = false
    await chat.resend(chat.store.messages[0])
    expect(chat.store.messages.map((m) => [m.role, m.text, m.status])).toEqual([
      ['user', '运费怎么算', 'sent'],
      ['bot', '答 运费怎么算', 'sent'],
      ['user', '订单 123 到哪了', 'sent'],
      ['bot', '答 订单 123 到哪了', 'sent'],
    ])
    chat.stopEvents()
  })

  it('logout() ends the conversation: stream stopped, token forgotten, screen cleared, late answers dropped', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let answer!: () => void
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () =>
        json({
          session_id: 's1',
          handoff: { status: 'active' },
          messages: [
            { id: 'u1', role: 'user', text: '订单 1234567890123 到哪了', created_at: '2026-11-24T10:00:00Z' },
            { id: 'a1', role: 'agent', text: '已发货，顺丰 SF123', created_at: '2026-11-24T10:01:00Z' },
          ],
        }),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'POST /api/v1/chat': async () => {
        await new Promise<void>((r) => (answer = r))
        return json(chatReply({ session_token: 'tok1', message_id: 'b2' }))
      },
    })
    const streams: AbortSignal[] = []
    const impl: typeof fetch = (input, init) => {
      if (String(input).endsWith('/events') && init?.signal) streams.push(init.signal)
      return f.impl(input, init)
    }
    const chat = useChat({ api: new WidgetApi(config.apiBase, impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    await flush()
    chat.store.open = true
    expect(chat.store.messages).toHaveLength(2)
    expect(streams).toHaveLength(1)
    const inFlight = chat.send('地址改一下')
    await flush()
    chat.store.draft = '我的新地址是'

    chat.logout() // the shop's shopper logged out

    expect(streams[0].aborted).toBe(true)
    expect(storage.getItem('xk')).toBeNull()
    expect(chat.store).toMatchObject({ session: null, messages: [], handoff: 'none', draft: '', typing: false, notice: null, open: true })
    answer() // the old shopper's turn answers after the logout: neither its session nor its reply comes back
    await inFlight
    await flush()
    expect(chat.store.session).toBeNull()
    expect(chat.store.messages).toEqual([])
    expect(storage.getItem('xk')).toBeNull()
    expect(streams).toHaveLength(1) // no event stream reopened for it
  })

  it('logout() during the restore of a saved conversation does not bring it back', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let answer!: () => void
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': async () => {
        await new Promise<void>((r) => (answer = r))
        return json({ session_id: 's1', handoff: { status: 'none' }, messages: [{ id: 'b1', role: 'bot', text: '您好', created_at: '2026-11-24T10:00:00Z' }] })
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    const restoring = chat.restore()
    await flush()
    chat.logout()
    answer()
    await restoring
    expect(chat.store).toMatchObject({ session: null, messages: [], restoring: false })
    expect(storage.getItem('xk')).toBeNull()
    // the saved session is ended on the server too, with its own token; nothing else goes out
    expect(f.calls.map((c) => [c.method, c.path, c.headers.get('X-Session-Token')])).toEqual([
      ['GET', '/api/v1/sessions/s1/history', 'tok1'],
      ['DELETE', '/api/v1/sessions/s1', 'tok1'],
    ])
  })

  it('logout() and a new conversation end the session on the server with its old token, without waiting for it', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    let deletes = 0
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => json({ session_id: 's1', handoff: { status: 'none' }, messages: [] }),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'GET /api/v1/sessions/s2/events': () => sseResponse([]),
      'POST /api/v1/chat': () => json(chatReply({ session_id: 's2', session_token: 'tok2' })),
      // the first never answers (the UI must not wait for it), the second fails (nobody is told)
      'DELETE /api/v1/sessions/s1': () => new Promise<Response>(() => deletes++),
      'DELETE /api/v1/sessions/s2': () => json({ error: { code: 'INTERNAL', message: 'x' } }, 500),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    chat.newConversation()
    expect(chat.store.session).toBeNull() // at once, not after the server's answer
    await vi.waitFor(() => expect(deletes).toBe(1))
    await chat.send('运费怎么算') // the new conversation is not held up by the unanswered DELETE
    expect(chat.store.session).toEqual({ id: 's2', token: 'tok2' })
    chat.logout()
    await flush()
    const ends = f.calls.filter((c) => c.method === 'DELETE')
    expect(ends.map((c) => [c.path, c.headers.get('X-Session-Token')])).toEqual([
      ['/api/v1/sessions/s1', 'tok1'],
      ['/api/v1/sessions/s2', 'tok2'],
    ])
    expect(chat.store).toMatchObject({ session: null, messages: [], notice: null })
    expect(f.calls.filter((c) => c.method === 'DELETE' || c.path === '/api/v1/chat')).toHaveLength(3) // never retried
  })

  it('a new conversation drops the answer of a turn still in flight in the old one, and stops its retries', async () => {
    const storage = memoryStorage()
    storage.setItem('xk', JSON.stringify({ id: 's1', token: 'tok1' }))
    const gates: (() => void)[] = []
    const f = fakeFetch({
      'GET /api/v1/sessions/s1/history': () => json({ session_id: 's1', handoff: { status: 'none' }, messages: [] }),
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
      'GET /api/v1/sessions/s2/events': () => sseResponse([]),
      'POST /api/v1/chat': async (_u, init) => {
        const body = JSON.parse(init.body!) as { message: string; session_id: string | null }
        if (body.message === '新问题') return json(chatReply({ session_id: 's2', session_token: 'tok2', message_id: 'b-new' }))
        await new Promise<void>((r) => gates.push(r))
        return json(chatReply({ session_id: 's1', session_token: null, message_id: 'b-old', reply: { type: 'answer', text: '旧会话的回答', suggestions: [], faq_id: null, quick_replies: [] } }))
      },
      'DELETE /api/v1/sessions/s1': () => new Response(null, { status: 204 }),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage, sleep: noSleep })
    await chat.restore()
    const old = chat.send('地址改一下')
    await vi.waitFor(() => expect(gates).toHaveLength(1))
    chat.newConversation()
    await chat.send('新问题') // not queued behind the old conversation's turn
    gates.shift()!() // the old turn answers now
    await old
    await flush()
    expect(chat.store.session).toEqual({ id: 's2', token: 'tok2' })
    expect(JSON.parse(storage.getItem('xk')!)).toEqual({ id: 's2', token: 'tok2' })
    expect(chat.store.messages.map((m) => [m.role, m.text])).toEqual([
      ['user', '新问题'],
      ['bot', '请问您想了解哪一项？'],
    ])
    expect(chat.store.typing).toBe(false)

    // a turn of the old conversation still retrying stops: its next try would have gone out in the new one
    let sleeping!: () => void
    const slept = new Promise<void>((r) => (sleeping = r))
    let wake!: () => void
    const sleep = () => (sleeping(), new Promise<void>((r) => (wake = r)))
    setActivePinia(createPinia())
    const g = fakeFetch({
      'POST /api/v1/chat': () => json({ error: { code: 'OVERLOADED', message: 'x' } }, 503),
    })
    const chat2 = useChat({ api: new WidgetApi(config.apiBase, g.impl), i18n: i18n(), config, storage: null, sleep })
    const retrying = chat2.send('你好')
    await slept
    chat2.newConversation()
    wake()
    await retrying
    expect(g.calls.filter((c) => c.path === '/api/v1/chat')).toHaveLength(1)
    expect(chat2.store).toMatchObject({ messages: [], connection: 'online', notice: null })
  })

  it('ends the session a turn opened when its answer comes after the conversation ended', async () => {
    let answer!: () => void
    const f = fakeFetch({
      'POST /api/v1/chat': async () => {
        await new Promise<void>((r) => (answer = r))
        return json(chatReply({ session_id: 's9', session_token: 'tok9', reply: { type: 'handoff', text: '正在为您转接人工客服', suggestions: [], faq_id: null, quick_replies: [] }, handoff: { status: 'waiting' } }))
      },
      'DELETE /api/v1/sessions/s9': () => new Response(null, { status: 204 }),
    })
    const chat = useChat({ api: new WidgetApi(config.apiBase, f.impl), i18n: i18n(), config, storage: null, sleep: noSleep })
    const first = chat.send('转人工') // a new visitor's first message: no session yet
    await vi.waitFor(() => expect(answer).toBeTypeOf('function'))
    chat.logout() // nothing to end yet
    answer()
    await first
    await flush()
    expect(chat.store).toMatchObject({ session: null, messages: [], handoff: 'none' })
    // nobody holds its token any more: ended, so agents are not left with a queued visitor who is gone
    expect(f.calls.filter((c) => c.method === 'DELETE').map((c) => [c.path, c.headers.get('X-Session-Token')])).toEqual([
      ['/api/v1/sessions/s9', 'tok9'],
    ])
  })
})
