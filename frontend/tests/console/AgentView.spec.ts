import { describe, expect, it } from 'vitest'
import { mount, flushPromises } from '@vue/test-utils'
import AgentView from '@/console/views/AgentView.vue'
import { fakeFetch, json, sseResponse } from '../widget/helpers'
import { consoleGlobals } from './helpers'

const ticket = { ticket_id: 't1', session_id: 's1', status: 'active', created_at: '2026-11-24T10:00:00Z', agent: 'admin', last_message: '在吗' }

describe('AgentView', () => {
  it('shows in the queue and in the conversation header whether the visitor is a verified customer', async () => {
    const verified = { ...ticket, ticket_id: 't2', session_id: 's2', status: 'waiting', agent: null, visitor: { verified: true, customer_id: 'demo_user_1001' } }
    const anonymous = { ...ticket, ticket_id: 't3', session_id: 's3', status: 'waiting', agent: null, visitor: { verified: false, customer_id: null } }
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: url.searchParams.get('status') === 'waiting' ? [verified, anonymous] : [] }),
      'GET /api/v1/admin/conversations/s2': () => json({ session_id: 's2', started_at: '', last_at: '', visitor: verified.visitor, handoff: true, rating: null, rating_comment: null, messages: [] }),
      'GET /api/v1/admin/conversations/s3': () => json({ session_id: 's3', started_at: '', last_at: '', visitor: anonymous.visitor, handoff: true, rating: null, rating_comment: null, messages: [] }),
      'GET /api/v1/admin/events': () => sseResponse([]),
    })
    const g = consoleGlobals(f.impl)
    const w = mount(AgentView, { global: g.global, attachTo: document.body })
    await flushPromises()
    const items = w.findAll('button.ticket')
    expect(items.map((b) => b.find('.visitor-badge').text())).toEqual(['已验证 · demo_user_1001', '匿名访客'])
    await items[1].trigger('click')
    await flushPromises()
    const head = w.find('.chat-head .visitor-badge')
    expect(head.text()).toBe('匿名访客')
    expect(head.attributes('title')).toContain('均未核实')
    await items[0].trigger('click')
    await flushPromises()
    expect(w.find('.chat-head .visitor-badge').text()).toBe('已验证 · demo_user_1001')
    w.unmount()
  })

  it('does not send the reply on the Enter that confirms a pinyin candidate (Safari keyCode 229)', async () => {
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: url.searchParams.get('status') === 'active' ? [ticket] : [] }),
      'GET /api/v1/admin/conversations/s1': () => json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages: [] }),
      'GET /api/v1/admin/events': () => sseResponse([]),
      'POST /api/v1/admin/handoffs/t1/messages': (_u, init) => json({ id: 'a1', role: 'agent', text: JSON.parse(init.body!).text, created_at: '2026-11-24T10:01:00Z' }),
    })
    const g = consoleGlobals(f.impl)
    const w = mount(AgentView, { global: g.global, attachTo: document.body })
    await flushPromises()
    await w.findAll('.el-radio-button').at(1)!.find('input').setValue(true) // the "active" tab
    await w.find('button.ticket').trigger('click')
    await flushPromises()
    const box = w.find('.composer textarea')
    await box.setValue('您好')
    await box.trigger('keydown', { key: 'Enter', isComposing: true })
    await box.trigger('keydown', { key: 'Enter', keyCode: 229 })
    await flushPromises()
    expect(f.calls.some((c) => c.path.endsWith('/messages'))).toBe(false)
    await box.trigger('keydown', { key: 'Enter', keyCode: 13 })
    await flushPromises()
    expect(f.calls.filter((c) => c.path.endsWith('/messages')).map((c) => c.body)).toEqual([{ text: '您好' }])
    w.unmount()
  })

  it('sends a reply once however often Enter is pressed while it is on its way, and keeps what was typed meanwhile', async () => {
    const gates: (() => void)[] = []
    let fail = false
    const f = fakeFetch({
      'GET /api/v1/admin/handoffs': (url) => json({ items: url.searchParams.get('status') === 'active' ? [ticket] : [] }),
      'GET /api/v1/admin/conversations/s1': () => json({ session_id: 's1', started_at: '', last_at: '', handoff: true, rating: null, rating_comment: null, messages: [] }),
      'GET /api/v1/admin/events': () => sseResponse([]),
      'POST /api/v1/admin/handoffs/t1/messages': async (_u, init) => {
        await new Promise<void>((r) => gates.push(r)) // a slow API
        if (fail) return json({ error: { code: 'HANDOFF_STATE', message: '状态不允许 / state', request_id: 'r' } }, 409)
        return json({ id: `a${gates.length}`, role: 'agent', text: JSON.parse(init.body!).text, created_at: '2026-11-24T10:01:00Z' })
      },
    })
    const g = consoleGlobals(f.impl)
    const w = mount(AgentView, { global: g.global, attachTo: document.body })
    await flushPromises()
    await w.findAll('.el-radio-button').at(1)!.find('input').setValue(true)
    await w.find('button.ticket').trigger('click')
    await flushPromises()
    const box = w.find('.composer textarea')
    const posted = () => f.calls.filter((c) => c.path.endsWith('/messages')).map((c) => c.body)
    await box.setValue('请稍等，我查一下')
    await box.trigger('keydown', { key: 'Enter', keyCode: 13 })
    await box.trigger('keydown', { key: 'Enter', keyCode: 13 }) // impatient second Enter
    await w.find('.composer').trigger('submit')
    await flushPromises()
    expect(posted()).toEqual([{ text: '请稍等，我查一下' }])
    await box.setValue('订单号是多少？') // the next line, typed while the first is on its way
    gates.shift()!()
    await flushPromises()
    expect((box.element as HTMLTextAreaElement).value).toBe('订单号是多少？')
    expect(posted()).toEqual([{ text: '请稍等，我查一下' }])

    fail = true // a reply that does not go out comes back into the box, before what was typed since
    await box.trigger('keydown', { key: 'Enter', keyCode: 13 })
    await flushPromises()
    await box.setValue('还在吗')
    gates.shift()!()
    await flushPromises()
    expect((box.element as HTMLTextAreaElement).value).toBe('订单号是多少？\n还在吗')
    w.unmount()
  })
})
