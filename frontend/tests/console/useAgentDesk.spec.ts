import { describe, expect, it, vi } from 'vitest'
import { defineComponent, h } from 'vue'
import { mount } from '@vue/test-utils'
import { useAgentDesk } from '@/console/composables/useAgentDesk'
import { useApi, useT } from '@/console/context'
import { fakeFetch, json, sseResponse } from '../widget/helpers'
import { consoleGlobals } from './helpers'

/** The composable inside a component (it registers an unmount hook). */
const Host = defineComponent({
  props: { onDesk: { type: Function, required: true } },
  setup: (props) => (props.onDesk(useAgentDesk(useApi(), useT().t)), () => h('div')),
})
function mountDesk(g: ReturnType<typeof consoleGlobals>): ReturnType<typeof useAgentDesk> {
  let desk!: ReturnType<typeof useAgentDesk>
  mount(Host, { props: { onDesk: (d: ReturnType<typeof useAgentDesk>) => (desk = d) }, global: g.global })
  return desk
}

const ticket = { ticket_id: 't1', session_id: 's1', status: 'waiting', created_at: '2026-11-24T10:00:00Z', agent: null, last_message: '在吗' }

describe('useAgentDesk', () => {
  it('takes over, replies, and merges live visitor messages of the selected conversation only', async () => {
    let status = 'waiting'
    let queueLoads = 0
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => {
        queueLoads++
        return json({ items: url.searchParams.get('status') === status ? [{ ...ticket, status }] : [] })
      },
      'GET /api/v1/admin/conversations/s1': () =>
        json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages: [{ id: 'u1', role: 'user', text: '在吗', created_at: '2026-11-24T10:00:00Z' }] }),
      'POST /api/v1/admin/handoffs/t1/take': () => {
        status = 'active'
        return json({ ...ticket, status: 'active', agent: 'admin' })
      },
      'POST /api/v1/admin/handoffs/t1/messages': (_u, init) =>
        json({ id: 'a1', role: 'agent', text: JSON.parse(init.body!).text, created_at: '2026-11-24T10:01:00Z' }),
      'GET /api/v1/admin/events': () =>
        sseResponse([
          'event: message\ndata: {"id":"u2","role":"user","text":"订单号 123","created_at":"2026-11-24T10:02:00Z","session_id":"s1","ticket_id":"t1"}\n\n',
          'event: message\ndata: {"id":"a1","role":"agent","text":"您好","created_at":"2026-11-24T10:01:00Z","session_id":"s1","ticket_id":"t1"}\n\n',
          'event: message\ndata: {"id":"x9","role":"user","text":"别的会话","created_at":"2026-11-24T10:02:00Z","session_id":"s2","ticket_id":"t2"}\n\n',
        ]),
    })
    const g = consoleGlobals(f.impl)
    const desk = mountDesk(g)

    await desk.loadQueue()
    expect(desk.waiting.value.map((x) => x.ticket_id)).toEqual(['t1'])
    await desk.select(desk.waiting.value[0])
    expect(desk.mine.value).toBe(false)
    expect(await desk.send('hi')).toBe(false) // not taken yet: nothing is sent
    expect(f.calls.some((c) => c.path.endsWith('/messages'))).toBe(false)
    await desk.take(desk.selected.value!, 'ok')
    expect(desk.selected.value?.status).toBe('active')
    expect(desk.active.value).toHaveLength(1)
    expect(await desk.send('  您好  ')).toBe(true)
    const sent = f.calls.filter((c) => c.path.endsWith('/messages')).at(-1)!
    expect(sent.body).toEqual({ text: '您好' })

    const before = queueLoads
    void desk.connect()
    await vi.waitFor(() => expect(desk.messages.value.map((m) => m.id)).toEqual(['u1', 'a1', 'u2']))
    expect(desk.live.value).toBe(true)
    expect(queueLoads).toBe(before) // message events do not reload the queue
    desk.disconnect()
  })

  it('drops a ticket from the queue when taking it fails because the visitor has left', async () => {
    let open = true
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: open && url.searchParams.get('status') === 'waiting' ? [ticket] : [] }),
      'POST /api/v1/admin/handoffs/t1/take': () => {
        open = false // the API closed the ticket: its session had expired
        return json({ error: { code: 'SESSION_NOT_FOUND', message: '会话不存在或已过期 / The session does not exist or has expired', request_id: 'r' } }, 404)
      },
    })
    const desk = mountDesk(consoleGlobals(f.impl))
    await desk.loadQueue()
    expect(desk.waiting.value).toHaveLength(1)
    await desk.take(desk.waiting.value[0], 'ok')
    expect(desk.waiting.value).toEqual([])
    expect(desk.selected.value).toBeNull()
  })

  it('after the live stream drops, re-reads the open conversation: nothing the visitor wrote meanwhile is lost', async () => {
    let transcripts = 0
    let opens = 0
    const msg = (id: string, text: string) => ({ id, role: 'user', text, created_at: '2026-11-24T10:00:00Z' })
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: url.searchParams.get('status') === 'active' ? [{ ...ticket, status: 'active' }] : [] }),
      'GET /api/v1/admin/conversations/s1': () => {
        transcripts++
        const messages = transcripts === 1 ? [msg('u1', '在吗')] : [msg('u1', '在吗'), msg('u3', '订单号是 123')]
        return json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages })
      },
      'GET /api/v1/admin/events': () => {
        opens++
        if (opens === 1) return new Response(new ReadableStream({ start: (c) => c.close() }), { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
        return sseResponse([])
      },
    })
    const g = consoleGlobals(f.impl)
    const desk = mountDesk(g)
    await desk.loadQueue()
    await desk.select(desk.active.value[0])
    expect(desk.messages.value.map((m) => m.id)).toEqual(['u1'])
    void desk.connect()
    await vi.waitFor(() => expect(desk.messages.value.map((m) => m.id)).toEqual(['u1', 'u3']), { timeout: 3000 })
    expect(opens).toBe(2)
    desk.disconnect()
  })

  it('has one reply in flight at a time', async () => {
    const gates: (() => void)[] = []
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: url.searchParams.get('status') === 'active' ? [{ ...ticket, status: 'active' }] : [] }),
      'GET /api/v1/admin/conversations/s1': () => json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages: [] }),
      'POST /api/v1/admin/handoffs/t1/messages': async (_u, init) => {
        await new Promise<void>((r) => gates.push(r))
        return json({ id: `a${gates.length}`, role: 'agent', text: JSON.parse(init.body!).text, created_at: '2026-11-24T10:01:00Z' })
      },
    })
    const desk = mountDesk(consoleGlobals(f.impl))
    await desk.loadQueue()
    await desk.select(desk.active.value[0])
    const first = desk.send('好的')
    const second = desk.send('好的')
    expect(desk.sending.value).toBe(true)
    await vi.waitFor(() => expect(gates.length).toBeGreaterThan(0))
    await new Promise((r) => setTimeout(r, 10))
    gates.forEach((open) => open())
    expect([await first, await second]).toEqual([true, false])
    expect(f.calls.filter((c) => c.path.endsWith('/messages'))).toHaveLength(1)
    expect(desk.messages.value.map((m) => m.text)).toEqual(['好的'])
    expect(desk.sending.value).toBe(false)
  })

  it('shows the open conversation as ended, and takes no more replies, once its ticket has been closed elsewhere', async () => {
    let open = true
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: open && url.searchParams.get('status') === 'active' ? [{ ...ticket, status: 'active' }] : [] }),
      'GET /api/v1/admin/conversations/s1': () => json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages: [] }),
      'GET /api/v1/admin/events': () =>
        sseResponse(['event: handoff\ndata: {"ticket_id":"t1","session_id":"s1","status":"closed"}\n\n']),
    })
    const desk = mountDesk(consoleGlobals(f.impl))
    await desk.loadQueue()
    await desk.select(desk.active.value[0])
    expect(desk.mine.value).toBe(true)
    open = false // an admin handed it back from another tab
    void desk.connect()
    await vi.waitFor(() => expect(desk.selected.value?.status).toBe('closed'))
    expect(desk.mine.value).toBe(false)
    expect(await desk.send('还在吗')).toBe(false)
    expect(f.calls.some((c) => c.path.endsWith('/messages'))).toBe(false)
    desk.disconnect()
  })
})
