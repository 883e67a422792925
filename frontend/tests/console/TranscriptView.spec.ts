import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import TranscriptView from '@/console/components/TranscriptView.vue'
import type { TranscriptMessage } from '@/api/types'
import { fakeFetch } from '../widget/helpers'
import { consoleGlobals } from './helpers'

const messages: TranscriptMessage[] = [
  { id: 'u1', role: 'user', text: '<b>优惠</b>', created_at: '2026-11-24T10:00:00Z', intent: 'coupon_promotion', confidence: 0.95, reply_type: null, faq_id: null, suggestions: [], latency_ms: null, feedback: [] },
  {
    id: 'b1',
    role: 'bot',
    text: '您是不是想问：',
    created_at: '2026-11-24T10:00:01Z',
    intent: 'coupon_promotion',
    confidence: 0.9512,
    reply_type: 'suggest',
    faq_id: null,
    suggestions: ['优惠券怎么用？', '<img src=x onerror=alert(1)>满减规则'],
    latency_ms: 41.6,
    feedback: ['down'],
  },
  { id: 'u2', role: 'user', text: '2', created_at: '2026-11-24T10:00:05Z', intent: 'coupon_promotion', confidence: 1, reply_type: null, faq_id: null, suggestions: [], latency_ms: null, feedback: [] },
  { id: 'b2', role: 'bot', text: '满 199 减 20…', created_at: '2026-11-24T10:00:05Z', intent: 'coupon_promotion', confidence: 1, reply_type: 'answer', faq_id: 'faq-083', suggestions: [], latency_ms: 3, feedback: [] },
  { id: 'b3', role: 'bot', text: '不好意思，我没太理解', created_at: '2026-11-24T10:01:00Z', intent: null, confidence: 0.31, reply_type: 'clarify', faq_id: null, suggestions: [], latency_ms: 20, feedback: [] },
]

function render() {
  const g = consoleGlobals(fakeFetch({}).impl)
  return mount(TranscriptView, { props: { messages }, global: g.global })
}

describe('TranscriptView', () => {
  it('shows reply type, intent with confidence, the matched FAQ and the offered suggestions as tags', () => {
    const w = render()
    const bots = w.findAll('.msg--bot')
    const suggest = bots[0]
    expect(suggest.find('.tag-reply').text()).toBe('推荐')
    expect(suggest.find('.tag-intent').text()).toBe('优惠活动 · 0.95')
    expect(suggest.find('.tag-intent').attributes('title')).toBe('意图: coupon_promotion')
    expect(suggest.find('.tag-faq').exists()).toBe(false)
    expect(suggest.findAll('.tag-sug').map((t) => t.text())).toEqual(['①优惠券怎么用？', '②<img src=x onerror=alert(1)>满减规则'])
    expect(suggest.find('.sug-list').attributes('aria-label')).toBe('推荐的问题')

    const answer = bots[1]
    expect(answer.find('.tag-reply').text()).toBe('直接回答')
    expect(answer.find('.tag-faq').text()).toBe('FAQ faq-083')
    expect(answer.find('.sugs').exists()).toBe(false)

    const clarify = bots[2]
    expect(clarify.find('.tag-intent').text()).toBe('未识别意图 · 0.31')
  })

  it('shows an intent id without a display name as it is', () => {
    const custom: TranscriptMessage[] = [{ ...messages[0], id: 'u9', role: 'bot', reply_type: 'answer', intent: 'shop_custom_intent', confidence: 0.8 }]
    const g = consoleGlobals(fakeFetch({}).impl)
    const w = mount(TranscriptView, { props: { messages: custom }, global: g.global })
    expect(w.find('.tag-intent').text()).toBe('shop_custom_intent · 0.80')
  })

  it('renders message text and suggestions as text, never as markup', () => {
    const w = render()
    expect(w.find('img').exists()).toBe(false)
    expect(w.find('b').exists()).toBe(false)
    expect(w.findAll('.msg--user .bubble')[0].text()).toBe('<b>优惠</b>')
  })
})
