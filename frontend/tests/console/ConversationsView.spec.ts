import { afterEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import ConversationsView from '@/console/views/ConversationsView.vue'
import type { ConversationSummary, VisitorIdentity } from '@/api/types'
import { fakeFetch, json } from '../widget/helpers'
import { consoleGlobals } from './helpers'

const VERIFIED: VisitorIdentity = { verified: true, customer_id: 'demo_user_1001' }
const ANONYMOUS: VisitorIdentity = { verified: false, customer_id: null }

function item(session_id: string, visitor: VisitorIdentity): ConversationSummary {
  const at = '2026-12-01T10:00:00Z'
  return { session_id, started_at: at, last_at: at, visitor, turns: 1, last_intent: null, handoff: false, feedback: { up: 0, down: 0 }, rating: null }
}

/** The view against a fake API; `queries` holds the query string of every list request, in order. */
async function render() {
  const queries: URLSearchParams[] = []
  const f = fakeFetch({
    'GET /api/v1/admin/conversations': (url) => {
      queries.push(url.searchParams)
      return json({ items: [item('s_verified', VERIFIED), item('s_anon', ANONYMOUS)], total: 2 })
    },
    'GET /api/v1/admin/conversations/s_verified': () =>
      json({ session_id: 's_verified', started_at: '', last_at: '', visitor: VERIFIED, handoff: false, rating: null, rating_comment: null, messages: [] }),
    'GET /api/v1/admin/conversations/s_anon': () =>
      json({ session_id: 's_anon', started_at: '', last_at: '', visitor: ANONYMOUS, handoff: false, rating: null, rating_comment: null, messages: [] }),
  })
  const g = consoleGlobals(f.impl)
  const w = mount(ConversationsView, { global: g.global, attachTo: document.body })
  await flushPromises()
  const transcripts = () => f.calls.filter((c) => c.path.startsWith('/api/v1/admin/conversations/')).map((c) => c.path.split('/').pop())
  return { w, queries, transcripts, last: () => Object.fromEntries(queries[queries.length - 1]) }
}

afterEach(() => {
  document.body.innerHTML = ''
})

describe('ConversationsView', () => {
  it('shows each conversation\'s visitor: the verified customer, or an anonymous visitor', async () => {
    const { w } = await render()
    expect(w.findAll('th').map((th) => th.text())).toContain('访客')
    const rows = w.findAll('.el-table__body tr')
    expect(rows.map((r) => r.find('.visitor-badge').text())).toEqual(['已验证 · demo_user_1001', '匿名访客'])
    // only a verified customer has conversations to look up by id
    expect(rows[0].find('button.by-customer').attributes('aria-label')).toBe('客户 demo_user_1001 的全部会话')
    expect(rows[1].find('button.by-customer').exists()).toBe(false)
    w.unmount()
  })

  it('sends the customer id and the verified filter, and drops them again on reset', async () => {
    const { w, last } = await render()
    expect(last()).not.toHaveProperty('customer_id')
    expect(last()).not.toHaveProperty('verified')
    await w.find('.customer-filter input').setValue('  demo_user_1001 ')
    const selects = w.findAllComponents({ name: 'ElSelect' })
    const verified = selects.find((s) => s.classes().includes('verified-filter'))!
    verified.vm.$emit('update:modelValue', 'true')
    await w.find('form.toolbar').trigger('submit')
    await flushPromises()
    expect(last()).toMatchObject({ customer_id: 'demo_user_1001', verified: 'true', page: '1' })
    expect(last()).toHaveProperty('date_from') // the other filters stay as they were
    verified.vm.$emit('update:modelValue', 'false')
    await w.find('form.toolbar').trigger('submit')
    await flushPromises()
    expect(last()).toMatchObject({ customer_id: 'demo_user_1001', verified: 'false' })
    const reset = w.findAll('form.toolbar button').find((b) => b.text() === '重置')!
    await reset.trigger('click')
    await flushPromises()
    expect(last()).not.toHaveProperty('customer_id')
    expect(last()).not.toHaveProperty('verified')
    w.unmount()
  })

  it('lists all of a verified customer\'s conversations, whenever they were, from their badge or transcript', async () => {
    const { w, queries, transcripts, last } = await render()
    await w.find('.el-table__body button.by-customer').trigger('click')
    await flushPromises()
    expect(last()).toEqual({ page: '1', page_size: '20', customer_id: 'demo_user_1001' }) // no date range
    expect(w.find<HTMLInputElement>('.customer-filter input').element.value).toBe('demo_user_1001')
    expect(transcripts()).toEqual([]) // the badge filters, it does not open the row
    // from the transcript drawer
    const before = queries.length
    await w.findAll('.el-table__body tr')[0].trigger('click')
    await flushPromises()
    expect(transcripts()).toEqual(['s_verified'])
    const link = document.querySelector<HTMLButtonElement>('.el-drawer .by-customer-link')!
    expect(link.textContent).toContain('客户 demo_user_1001 的全部会话')
    link.click()
    await flushPromises()
    expect(queries.length).toBe(before + 1)
    expect(last()).toEqual({ page: '1', page_size: '20', customer_id: 'demo_user_1001' })
    // an anonymous visitor's transcript offers no such link
    await w.findAll('.el-table__body tr')[1].trigger('click')
    await flushPromises()
    expect(document.querySelector('.el-drawer .visitor-badge')?.textContent).toBe('匿名访客')
    expect(document.querySelector('.el-drawer .by-customer-link')).toBeNull()
    w.unmount()
  })
})
