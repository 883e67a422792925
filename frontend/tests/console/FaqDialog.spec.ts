import { describe, expect, it } from 'vitest'
import { mount, flushPromises } from '@vue/test-utils'
import FaqDialog from '@/console/components/FaqDialog.vue'
import type { Faq, FaqWrite } from '@/api/types'
import { fakeFetch } from '../widget/helpers'
import { consoleGlobals, sampleFaq } from './helpers'

const faq = sampleFaq()

async function saved(
  props: { faq: Faq | null; prefill?: Partial<FaqWrite> },
  edit?: (form: { intent: string }) => void,
): Promise<FaqWrite> {
  const g = consoleGlobals(fakeFetch({}).impl)
  const w = mount(FaqDialog, {
    props: { modelValue: true, categories: ['物流配送'], saving: false, ...props },
    global: g.global,
    attachTo: document.body,
  })
  await flushPromises()
  if (edit) {
    edit((w.vm as unknown as { form: { intent: string } }).form)
    await flushPromises()
  }
  const save = [...document.body.querySelectorAll('button')].find((b) => b.textContent?.trim() === '保存')
  expect(save).toBeTruthy()
  save!.click()
  await flushPromises()
  const events = w.emitted('save') as FaqWrite[][] | undefined
  w.unmount()
  expect(events?.length).toBe(1)
  return events![0][0]
}

describe('FaqDialog', () => {
  it('refuses a similar question with the file separator before the API does', async () => {
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(FaqDialog, { props: { modelValue: true, faq, categories: [], saving: false }, global: g.global, attachTo: document.body })
    await flushPromises()
    const input = document.body.querySelector<HTMLInputElement>('input[placeholder="输入相似问法后回车添加"]')!
    input.value = '运费|邮费谁出'
    input.dispatchEvent(new Event('input'))
    input.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter' }))
    await flushPromises()
    expect(document.body.textContent).toContain('相似问法不能包含 |')
    expect(document.body.textContent).not.toContain('运费|邮费谁出')
    w.unmount()
  })
  it('offers the intent field with its explanation', async () => {
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(FaqDialog, {
      props: { modelValue: true, faq, categories: [], saving: false },
      global: g.global,
      attachTo: document.body,
    })
    await flushPromises()
    expect(document.body.textContent).toContain('意图')
    expect(document.body.textContent).toContain('机器人直接回答')
    expect(document.body.querySelector('[data-testid="faq-intent"]')).toBeTruthy()
    w.unmount()
  })

  it("keeps an FAQ's intent when it is saved", async () => {
    const body = await saved({ faq })
    expect(body.intent).toBe('logistics')
    expect(body.question).toBe(faq.question)
  })

  it('sends no intent for a new FAQ without one (the API then keeps none)', async () => {
    const body = await saved({ faq: null, prefill: { question: '发票怎么开？', answer: '在订单详情页申请。' } })
    expect('intent' in body).toBe(false)
  })

  it("clears an FAQ's intent when the field is emptied (sends null; leaving it out kept the old one)", async () => {
    const body = await saved({ faq }, (form) => {
      form.intent = ''
    })
    expect(body.intent).toBeNull()
  })

  it('takes a prefilled intent', async () => {
    const body = await saved({ faq: null, prefill: { question: '发票怎么开？', answer: '在订单详情页申请。', intent: 'invoice' } })
    expect(body.intent).toBe('invoice')
  })
})
