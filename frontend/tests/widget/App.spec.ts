import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia } from 'pinia'
import App from '@/widget/App.vue'
import { WidgetApi } from '@/api/widget'
import { API_KEY, CONFIG_KEY, I18N_KEY } from '@/widget/context'
import { useChatStore } from '@/widget/store'
import { fakeFetch, i18n, json, sseResponse } from './helpers'

describe('widget App', () => {
  it('opens no event stream for a widget destroyed while its first message was on the way', async () => {
    localStorage.clear()
    let answer!: () => void
    const f = fakeFetch({
      'POST /api/v1/chat': async () => {
        await new Promise<void>((r) => (answer = r))
        return json({
          session_id: 's1',
          session_token: 'tok1',
          message_id: 'b1',
          intent: null,
          confidence: 0.9,
          reply: { type: 'answer', text: '满 99 包邮', suggestions: [], faq_id: 1, quick_replies: [] },
          handoff: { status: 'none' },
        })
      },
      'GET /api/v1/sessions/s1/events': () => sseResponse([]),
    })
    const pinia = createPinia()
    const w = mount(App, {
      global: {
        plugins: [pinia],
        provide: {
          [API_KEY as symbol]: new WidgetApi('http://api.test', f.impl),
          [I18N_KEY as symbol]: i18n(),
          [CONFIG_KEY as symbol]: { apiBase: 'http://api.test', storageKey: 'xk-app-test', maxChars: 1000, userId: null, userSignature: null },
        },
      },
      attachTo: document.body,
    })
    useChatStore(pinia).open = true
    await flushPromises()
    await w.find('textarea#xk-input').setValue('包邮吗')
    await w.find('form.xk-composer').trigger('submit')
    await flushPromises()
    expect(f.calls.map((c) => c.path)).toEqual(['/api/v1/chat'])

    w.unmount() // XiaoKeWidget.destroy() on a single-page shop's route change
    answer()
    await flushPromises()
    await new Promise((r) => setTimeout(r, 10))
    expect(f.calls.map((c) => c.path)).toEqual(['/api/v1/chat']) // no /events stream left running
    localStorage.clear()
  })
})
