import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, getActivePinia, setActivePinia } from 'pinia'
import ChatPanel from '@/widget/components/ChatPanel.vue'
import Launcher from '@/widget/components/Launcher.vue'
import { I18N_KEY } from '@/widget/context'
import { FULL_SCREEN_QUERY } from '@/widget/composables/useVisualViewport'
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

  it('does not close on the Escape that cancels a pinyin composition, and keeps the draft when it is closed', async () => {
    const { wrapper, store } = mountPanel()
    const input = wrapper.find('textarea#xk-input')
    await input.setValue('我想问一下退货')
    await input.trigger('keydown', { key: 'Escape', isComposing: true }) // Chrome / Firefox: the IME takes it
    await input.trigger('keydown', { key: 'Escape', keyCode: 229 }) // Safari
    expect(wrapper.emitted('close')).toBeUndefined()
    await input.trigger('keydown', { key: 'Escape' })
    expect(wrapper.emitted('close')).toHaveLength(1)

    // the panel is unmounted when closed (v-if): reopened, what was typed is still there
    wrapper.unmount()
    const again = mount(ChatPanel, {
      props: { maxChars: 20 },
      global: { plugins: [getActivePinia()!], provide: { [I18N_KEY as symbol]: i18n() } },
      attachTo: document.body,
    })
    expect((again.find('textarea#xk-input').element as HTMLTextAreaElement).value).toBe('我想问一下退货')
    expect(store.draft).toBe('我想问一下退货')
    again.unmount()
  })

  it('keeps keyboard focus in the composer after sending with the button or choosing a chip from the keyboard', async () => {
    const { wrapper, store } = mountPanel()
    const input = wrapper.find('textarea#xk-input')
    const button = wrapper.find('button.xk-send')
    await input.setValue('订单到哪了')
    ;(button.element as HTMLButtonElement).focus()
    expect(document.activeElement).toBe(button.element)
    await wrapper.find('form.xk-composer').trigger('submit')
    expect(wrapper.emitted('send')).toEqual([['订单到哪了']])
    expect(document.activeElement).toBe(input.element) // not lost with the now-disabled button

    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '请问您想问：', suggestions: ['运费怎么算'] }))
    await wrapper.vm.$nextTick()
    const chip = wrapper.findAll('.xk-chip').find((b) => b.text() === '运费怎么算')!
    ;(chip.element as HTMLButtonElement).focus()
    await chip.trigger('click', { detail: 1 }) // a tap: focus is left alone (no on-screen keyboard popping up)
    expect(document.activeElement).toBe(chip.element)
    await chip.trigger('click', { detail: 0 }) // Enter / Space on the focused chip
    expect(document.activeElement).toBe(input.element)
    expect(wrapper.emitted('send')).toEqual([['订单到哪了'], ['运费怎么算'], ['运费怎么算']])
  })

  it('does not yank a visitor reading older messages down to a new reply, but follows when at the bottom or sending', async () => {
    const { wrapper, store } = mountPanel()
    for (let i = 0; i < 8; i++) store.messages.push(makeMessage({ role: i % 2 ? 'bot' : 'user', id: i % 2 ? `b${i}` : null, text: `第 ${i} 条` }))
    const body = wrapper.find('.xk-body').element as HTMLElement
    // happy-dom has no layout: 100 px per rendered message, a 300 px high viewport
    Object.defineProperty(body, 'scrollHeight', { configurable: true, get: () => body.querySelectorAll('.xk-msg').length * 100 })
    Object.defineProperty(body, 'clientHeight', { configurable: true, get: () => 300 })
    await flushPromises()
    expect(body.scrollTop).toBe(900) // opened at the end (welcome + 8 messages)

    body.scrollTop = 100 // scrolled up, reading
    store.messages.push(makeMessage({ role: 'agent', id: 'a1', text: '您的订单已发货' }))
    await flushPromises()
    expect(body.scrollTop).toBe(100)

    store.messages.push(makeMessage({ role: 'user', text: '好的谢谢' })) // their own message: shown
    await flushPromises()
    expect(body.scrollTop).toBe(1100)

    body.scrollTop = 800 // at the bottom (1100 - 300): the conversation is followed
    store.messages.push(makeMessage({ role: 'agent', id: 'a2', text: '不客气' }))
    await flushPromises()
    expect(body.scrollTop).toBe(1200)
  })

  it('retires a reply\'s chips once the visitor answered it, even when that answer failed to send', async () => {
    const { wrapper, store } = mountPanel()
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '您是不是想问：', suggestions: ['运费怎么算', '包邮吗'], quickReplies: ['转人工'] }))
    await wrapper.vm.$nextTick()
    const reply = () => wrapper.findAll('.xk-msg--bot').at(-1)!
    expect(reply().findAll('button.xk-chip').every((b) => b.attributes('disabled') === undefined)).toBe(true)
    expect(reply().find('ol').attributes('aria-describedby')).toBeDefined() // "或回复序号 1-2 选择"
    await reply().findAll('button.xk-chip')[0].trigger('click')
    expect(wrapper.emitted('send')).toEqual([['运费怎么算']])

    // what the app does with it: the message goes out and fails (network error, 5xx) - no bot reply follows
    store.messages.push(makeMessage({ role: 'user', text: '运费怎么算', status: 'failed' }))
    await wrapper.vm.$nextTick()
    const chips = reply().findAll('button.xk-chip')
    expect(chips.map((b) => b.attributes('disabled'))).toEqual(['', '', ''])
    // the numbered path is retired with the chips: no "reply with the number" hint for the answered turn
    expect(reply().find('ol').attributes('aria-describedby')).toBeUndefined()
    expect(reply().find('.xk-sr[id^="xk-sug-hint"]').exists()).toBe(false)
    await chips[0].trigger('click')
    expect(wrapper.emitted('send')).toHaveLength(1) // no second copy of the failed message
    // retrying is the failed message's own 重发
    await wrapper.find('.xk-msg--user .xk-failed button').trigger('click')
    expect(wrapper.emitted('resend')).toHaveLength(1)
  })

  it('offers no thumbs on replies of an expired conversation', async () => {
    const { wrapper, store } = mountPanel()
    store.session = { id: 's2', token: 'tok2' }
    store.messages.push(makeMessage({ role: 'bot', id: 'b1', text: '满 99 包邮', sessionId: 's1' }))
    store.messages.push(makeMessage({ role: 'bot', id: 'b2', text: '七天无理由退货', sessionId: 's2' }))
    await wrapper.vm.$nextTick()
    const [old, current] = wrapper.findAll('.xk-msg--bot:not(.xk-welcome)')
    expect(old.find('.xk-fb').exists()).toBe(false)
    expect(current.find('button[aria-label="有帮助"]').exists()).toBe(true)
  })
})

/** A `window.visualViewport` double: `keyboard(h)` is iOS opening the keyboard over the page, `pan(top)` is iOS
 *  scrolling the visual viewport over the layout one to show the focused field. */
class FakeViewport extends EventTarget {
  width = 390
  height = 844
  offsetTop = 0
  offsetLeft = 0
  scale = 1
  keyboard(height: number) {
    this.height = height
    this.dispatchEvent(new Event('resize'))
  }
  pan(top: number) {
    this.offsetTop = top
    this.dispatchEvent(new Event('scroll'))
  }
}

describe('ChatPanel on a phone (visual viewport)', () => {
  function phone({ narrow = true } = {}) {
    const vv = new FakeViewport()
    vi.stubGlobal('visualViewport', vv)
    vi.stubGlobal('matchMedia', (q: string) => ({
      matches: narrow && q === FULL_SCREEN_QUERY,
      media: q,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
    }))
    return vv
  }
  const applied = (el: Element) => {
    const style = (el as HTMLElement).style
    return { height: style.getPropertyValue('--xk-vv-height'), top: style.getPropertyValue('--xk-vv-top') }
  }

  beforeEach(() => {
    document.body.innerHTML = ''
  })
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it('fits the panel to the visual viewport as the keyboard opens and iOS pans, and back when it closes', async () => {
    const vv = phone()
    const { wrapper } = mountPanel()
    await flushPromises()
    const panel = wrapper.find('.xk-panel').element
    expect(applied(panel)).toEqual({ height: '844px', top: '0px' })
    vv.keyboard(508)
    await flushPromises()
    expect(applied(panel)).toEqual({ height: '508px', top: '0px' })
    vv.pan(120)
    await flushPromises()
    expect(applied(panel)).toEqual({ height: '508px', top: '120px' })
    vv.pan(0)
    vv.keyboard(844)
    await flushPromises()
    expect(applied(panel)).toEqual({ height: '844px', top: '0px' })
    wrapper.unmount()
  })

  it('keeps a visitor at the bottom at the latest message when the keyboard opens, and leaves a reader alone', async () => {
    const vv = phone()
    const { wrapper, store } = mountPanel()
    for (let i = 0; i < 8; i++) store.messages.push(makeMessage({ role: i % 2 ? 'bot' : 'user', id: i % 2 ? `b${i}` : null, text: `第 ${i} 条` }))
    const panel = wrapper.find('.xk-panel').element as HTMLElement
    const body = wrapper.find('.xk-body').element as HTMLElement
    // happy-dom has no layout: 100 px per message; the list gets what the panel's applied height leaves (200 px
    // for the header and the composer), so it only shrinks once the DOM has the new height, as in a browser
    Object.defineProperty(body, 'scrollHeight', { configurable: true, get: () => body.querySelectorAll('.xk-msg').length * 100 })
    Object.defineProperty(body, 'clientHeight', {
      configurable: true,
      get: () => (parseFloat(panel.style.getPropertyValue('--xk-vv-height')) || 844) - 200,
    })
    await flushPromises()
    body.scrollTop = 900 - 644 // at the bottom
    vv.keyboard(444)
    await flushPromises()
    expect(body.scrollTop).toBe(900) // the latest message stays in view above the keyboard

    vv.keyboard(844)
    await flushPromises()
    body.scrollTop = 50 // scrolled up, reading
    vv.keyboard(444)
    await flushPromises()
    expect(body.scrollTop).toBe(50)
    wrapper.unmount()
  })

  it('stops following the visual viewport when the panel closes', async () => {
    const vv = phone()
    const added = vi.spyOn(vv, 'addEventListener')
    const removed = vi.spyOn(vv, 'removeEventListener')
    const { wrapper } = mountPanel()
    expect(added.mock.calls.map((c) => c[0]).sort()).toEqual(['resize', 'scroll'])
    wrapper.unmount() // closing the panel unmounts it (v-if)
    expect(removed.mock.calls).toEqual(added.mock.calls)
  })

  it('leaves the panel alone on wider screens and where there is no visualViewport', async () => {
    const vv = phone({ narrow: false })
    const { wrapper } = mountPanel()
    vv.keyboard(400)
    vv.pan(60)
    await flushPromises()
    expect(wrapper.find('.xk-panel').attributes('style')).toBeUndefined()
    wrapper.unmount()

    vi.stubGlobal('visualViewport', undefined)
    const again = mountPanel()
    await flushPromises()
    expect(again.wrapper.find('.xk-panel').attributes('style')).toBeUndefined()
    again.wrapper.unmount()
  })
})

describe('Launcher', () => {
  it('names the unread count in the button itself (its label is all a screen reader announces)', async () => {
    const w = mount(Launcher, { props: { open: false, unread: 0 }, global: { provide: { [I18N_KEY as symbol]: i18n() } } })
    expect(w.find('button').attributes('aria-label')).toBe('打开在线客服')
    await w.setProps({ unread: 2 })
    expect(w.find('button').attributes('aria-label')).toBe('打开在线客服（2 条未读消息）')
    expect(w.find('.xk-badge').text()).toBe('2')
    await w.setProps({ open: true })
    expect(w.find('button').attributes('aria-label')).toBe('关闭在线客服')
  })
})
