import { beforeEach, describe, expect, it } from 'vitest'
import { mount, flushPromises } from '@vue/test-utils'
import FaqDialog from '@/console/components/FaqDialog.vue'
import KnowledgeView from '@/console/views/KnowledgeView.vue'
import TemplatesView from '@/console/views/TemplatesView.vue'
import { useAuthStore } from '@/console/stores/auth'
import type { FaqWrite } from '@/api/types'
import { peekFaqDraft, peekTemplatesDraft, saveFaqDraft } from '@/console/composables/drafts'
import { fakeFetch, json } from '../widget/helpers'
import { consoleGlobals, sampleFaq } from './helpers'

const faq = sampleFaq()

const answerBox = () => document.body.querySelector<HTMLTextAreaElement>('.el-dialog textarea')!
const button = (label: string) => [...document.body.querySelectorAll('button')].find((b) => b.textContent?.trim() === label)!

describe('unsaved FAQ form across a login expiry (401)', () => {
  beforeEach(() => {
    sessionStorage.clear()
    document.body.innerHTML = ''
  })

  it('parks the typed answer when the login page replaces the dialog, and offers it again on the same FAQ', async () => {
    // signed out (the 401 handler ran), as the console is when the login page takes over
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(FaqDialog, { props: { modelValue: true, faq, categories: [], saving: false }, global: g.global, attachTo: document.body })
    await flushPromises()
    answerBox().value = '满 99 包邮，偏远地区（新疆、西藏）除外，运费按重量计算。'
    answerBox().dispatchEvent(new Event('input'))
    await flushPromises()
    w.unmount()
    expect(peekFaqDraft()?.form.answer).toBe('满 99 包邮，偏远地区（新疆、西藏）除外，运费按重量计算。')
    expect(peekFaqDraft()?.faq?.version).toBe(3)

    const g2 = consoleGlobals(fakeFetch({}).impl)
    const w2 = mount(FaqDialog, { props: { modelValue: true, faq, categories: [], saving: false }, global: g2.global, attachTo: document.body })
    await flushPromises()
    expect(answerBox().value).toBe('满 99 包邮，偏远地区（新疆、西藏）除外，运费按重量计算。')
    expect(document.body.textContent).toContain('已恢复登录过期前未保存的内容')
    expect(peekFaqDraft()).toBeNull() // offered once
    button('保存').click()
    await flushPromises()
    const body = (w2.emitted('save') as FaqWrite[][])[0][0]
    expect(body.answer).toBe('满 99 包邮，偏远地区（新疆、西藏）除外，运费按重量计算。')
    w2.unmount()
  })

  it('parks nothing for an untouched dialog', async () => {
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(FaqDialog, { props: { modelValue: true, faq, categories: [], saving: false }, global: g.global, attachTo: document.body })
    await flushPromises()
    w.unmount()
    expect(peekFaqDraft()).toBeNull()
  })

  it('reopens the parked form when the knowledge page is shown again after login', async () => {
    saveFaqDraft({ faq: null, form: { question: '发票怎么开？', answer: '在订单详情页申请电子发票。', category: '', similar: [], enabled: true, intent: '' } })
    const f = fakeFetch({
      'GET /api/v1/admin/faqs': () => json({ items: [], total: 0, kb_revision: 1 }),
      'GET /api/v1/admin/faqs/categories': () => json({ items: [] }),
      'GET /api/v1/admin/index': () => json({ live_version: null, versions: [], kb_revision: 1, live_kb_revision: null, stale: false }),
    })
    const g = consoleGlobals(f.impl)
    const w = mount(KnowledgeView, { global: g.global, attachTo: document.body })
    await flushPromises()
    await flushPromises()
    expect(answerBox()?.value).toBe('在订单详情页申请电子发票。')
    expect(document.body.textContent).toContain('已恢复登录过期前未保存的内容')
    w.unmount()
  })

  it('lets an answer be as long as the API accepts (5000 characters)', async () => {
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(FaqDialog, { props: { modelValue: true, faq, categories: [], saving: false }, global: g.global, attachTo: document.body })
    await flushPromises()
    expect(answerBox().getAttribute('maxlength')).toBe('5000')
    w.unmount()
  })
})

describe('unsaved template edits across a login expiry (401)', () => {
  const templates = {
    items: [
      { key: 'greeting', variants: ['您好，请问有什么可以帮您？'], variables: [] },
      { key: 'order_status', variants: ['订单 {order_id} 的状态是 {status}。'], variables: ['order_id', 'status'] },
    ],
  }
  const routes = { 'GET /api/v1/admin/templates': () => json(templates) }
  const box = (key: string) => document.body.querySelector<HTMLTextAreaElement>(`textarea[aria-label="${key} #1"]`)!

  beforeEach(() => {
    sessionStorage.clear()
    document.body.innerHTML = ''
  })

  async function editGreeting(signedIn: boolean) {
    const g = consoleGlobals(fakeFetch(routes).impl)
    if (signedIn) useAuthStore().signIn('tok', 'admin', 'admin', 3600)
    const w = mount(TemplatesView, { global: g.global, attachTo: document.body })
    await flushPromises()
    box('greeting').value = '您好！我是小客，有什么可以帮您？'
    box('greeting').dispatchEvent(new Event('input'))
    await flushPromises()
    if (!signedIn) useAuthStore().signOut() // what the 401 handler does before the login page replaces this one
    w.unmount()
  }

  it('parks only the edited templates when the login page replaces the page, and restores them once', async () => {
    await editGreeting(false)
    expect(peekTemplatesDraft()).toEqual({ greeting: ['您好！我是小客，有什么可以帮您？'] })

    const g = consoleGlobals(fakeFetch(routes).impl)
    const w = mount(TemplatesView, { global: g.global, attachTo: document.body })
    await flushPromises()
    expect(box('greeting').value).toBe('您好！我是小客，有什么可以帮您？')
    expect(box('order_status').value).toBe('订单 {order_id} 的状态是 {status}。')
    expect(document.body.textContent).toContain('已恢复登录过期前未保存的修改')
    expect(peekTemplatesDraft()).toBeNull() // offered once
    w.unmount()
  })

  it('parks nothing when the operator, still signed in, just leaves the page', async () => {
    await editGreeting(true)
    expect(peekTemplatesDraft()).toBeNull()
  })
})
