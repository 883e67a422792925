import { beforeEach, describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import ChatPanel from '@/widget/components/ChatPanel.vue'
import { I18N_KEY } from '@/widget/context'
import { makeMessage, useChatStore } from '@/widget/store'
import { i18n } from './helpers'

function mountPanel() {
  const pinia = createPinia()
  setActivePinia(pinia)
  const wrapper = mount(ChatPanel, {
    props: { maxChars: 20 },
    global: { plugins: [pinia], provide: { [I18N_KEY as symbol]: i18n() } },
    attachTo: document.body,
  })
  return { wrapper, store: useChatStore() }
}

describe('ChatPanel', () => {
  beforeEach(() => {
    document.body.innerHTML = ''
  })

  it('renders the welcome message with starter chips that send on click', async () => {
    const { wrapper } = mountPanel()
    expect(wrapper.text()).toContain('您好，我是小客智能助手')
    const chip = wrapper.findAll('.xk-chip').find((b) => b.text() === '怎么申请退货')!
    await chip.trigger('click')
    expect(wrapper.emitted('send')).toEqual([['怎么申请退货']])
  })

  it('renders message text as text and only http(s) links as anchors', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(
      makeMessage({
        role: 'bot',
        id: 'b1',
        text: '<img src=x onerror="alert(1)"> 详情 https://shop.example.com/help 或 javascript:alert(1)',
      }),
    )
    await wrapper.vm.$nextTick()
    const bubble = wrapper.findAll('.xk-bubble').at(-1)!
    expect(bubble.find('img').exists()).toBe(false)
    expect(bubble.text()).toContain('<img src=x onerror="alert(1)">')
    const links = bubble.findAll('a')
    expect(links).toHaveLength(1)
    expect(links[0].attributes('href')).toBe('https://shop.example.com/help')
    expect(links[0].attributes('rel')).toContain('noopener')
    expect(links[0].attributes('target')).toBe('_blank')
  })

  it('shows "您是不是想问" suggestions and quick replies on the latest bot reply only', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(makeMessage({ role: 'user', text: '运费' }))
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '请问您想问：', suggestions: ['运费怎么算'], quickReplies: ['查物流'] }))
    await wrapper.vm.$nextTick()
    expect(wrapper.text()).toContain('您是不是想问')
    await wrapper.findAll('.xk-chip').find((b) => b.text() === '运费怎么算')!.trigger('click')
    await wrapper.findAll('.xk-chip').find((b) => b.text() === '查物流')!.trigger('click')
    expect(wrapper.emitted('send')).toEqual([['运费怎么算'], ['查物流']])

    store.messages.push(makeMessage({ role: 'bot', id: 'b2', text: '好的' }))
    await wrapper.vm.$nextTick()
    const old = wrapper.findAll('.xk-chip').find((b) => b.text() === '运费怎么算')!
    expect(old.attributes('disabled')).toBeDefined()
  })

  it('does not repeat the "您是不是想问" label when the bot text already says it', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '您是不是想问：', suggestions: ['运费怎么算'] }))
    await wrapper.vm.$nextTick()
    const reply = wrapper.findAll('.xk-msg--bot').at(-1)!
    expect(reply.find('.xk-chips__label').exists()).toBe(false)
    expect(reply.text().split('您是不是想问').length - 1).toBe(1)
  })

  it('numbers the suggestions (the visitor may reply with the number) without changing the chip names', async () => {
    const { wrapper, store } = mountPanel()
    const offered = ['优惠券怎么用？', '满减规则是什么？', '会员有折扣吗？']
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '您是不是想问：', suggestions: offered }))
    await wrapper.vm.$nextTick()
    const list = wrapper.find('ol.xk-chips--numbered')
    expect(list.attributes('aria-label')).toBe('您是不是想问：')
    const items = list.findAll('li')
    expect(items.map((li) => li.find('.xk-sug__n').text())).toEqual(['①', '②', '③'])
    expect(items.every((li) => li.find('.xk-sug__n').attributes('aria-hidden') === 'true')).toBe(true)
    const chips = list.findAll('button.xk-chip')
    expect(chips.map((b) => b.text())).toEqual(offered) // the accessible name is the question itself
    expect(chips.map((b) => b.attributes('data-n'))).toEqual(['1', '2', '3'])
    const hint = wrapper.find(`#${list.attributes('aria-describedby')}`)
    expect(hint.text()).toBe('点击问题，或回复序号 1-3 选择')
    await chips[1].trigger('click')
    expect(wrapper.emitted('send')).toEqual([['满减规则是什么？']])
  })

  it('sends with Enter, keeps Shift+Enter for new lines, and ignores blank input', async () => {
    const { wrapper } = mountPanel()
    const input = wrapper.find('textarea#xk-input')
    await input.setValue('   ')
    await input.trigger('keydown', { key: 'Enter' })
    expect(wrapper.emitted('send')).toBeUndefined()
    await input.setValue('订单到哪了')
    await input.trigger('keydown', { key: 'Enter', shiftKey: true })
    expect(wrapper.emitted('send')).toBeUndefined()
    await input.trigger('keydown', { key: 'Enter' })
    expect(wrapper.emitted('send')).toEqual([['订单到哪了']])
    expect((input.element as HTMLTextAreaElement).value).toBe('')
  })

  it('does not send on the Enter that confirms an IME candidate (Chrome isComposing, Safari keyCode 229)', async () => {
    const { wrapper } = mountPanel()
    const input = wrapper.find('textarea#xk-input')
    await input.setValue('订单')
    await input.trigger('keydown', { key: 'Enter', isComposing: true })
    await input.trigger('keydown', { key: 'Enter', keyCode: 229 }) // Safari: compositionend came first
    expect(wrapper.emitted('send')).toBeUndefined()
    expect((input.element as HTMLTextAreaElement).value).toBe('订单')
    await input.trigger('keydown', { key: 'Enter', keyCode: 13 })
    expect(wrapper.emitted('send')).toEqual([['订单']])
  })

  it('offers thumbs on bot replies, a hand-off button, an offline banner and an aria-live log', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(makeMessage({ role: 'user', text: '你好' }))
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '您好' }))
    await wrapper.vm.$nextTick()
    expect(wrapper.find('[role="log"]').attributes('aria-live')).toBe('polite')
    await wrapper.find('button[aria-label="没帮助"]').trigger('click')
    expect(wrapper.emitted('feedback')![0][1]).toBe('down')

    await wrapper.findAll('button').find((b) => b.text() === '转人工')!.trigger('click')
    expect(wrapper.emitted('handoff')).toHaveLength(1)

    store.connection = 'offline'
    await wrapper.vm.$nextTick()
    const banner = wrapper.find('.xk-offline')
    expect(banner.attributes('role')).toBe('alert')
    await banner.find('button').trigger('click')
    expect(wrapper.emitted('reconnect')).toHaveLength(1)
    expect(wrapper.findAll('button').find((b) => b.text() === '转人工')!.attributes('disabled')).toBeDefined()
  })

  it('collects an end-of-chat rating', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(makeMessage({ role: 'user', text: '谢谢' }))
    await wrapper.vm.$nextTick()
    await wrapper.find('button[aria-label="结束并评价"]').trigger('click')
    const submit = wrapper.findAll('.xk-rating button').find((b) => b.text() === '提交评价')!
    expect(submit.attributes('disabled')).toBeDefined()
    await wrapper.findAll('.xk-star')[3].trigger('click')
    await wrapper.find('.xk-rating__comment').setValue('很快')
    await submit.trigger('click')
    expect(wrapper.emitted('rate')).toEqual([[4, '很快']])
  })

  it('closes on Escape', async () => {
    const { wrapper } = mountPanel()
    await wrapper.find('.xk-panel').trigger('keydown', { key: 'Escape' })
    expect(wrapper.emitted('close')).toHaveLength(1)
  })
})
