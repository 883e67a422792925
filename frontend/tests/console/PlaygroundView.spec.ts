import { describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import PlaygroundView from '@/console/views/PlaygroundView.vue'
import { fakeFetch, json } from '../widget/helpers'
import { consoleGlobals } from './helpers'

const result = {
  normalized: '怎么申请退货退款',
  intent: 'return_refund',
  confidence: 0.8123,
  intent_top_k: [
    { label: 'return_refund', confidence: 0.8123 },
    { label: 'logistics', confidence: 0.1 },
  ],
  sentiment: { label: 'negative', confidence: 0.71 },
  candidates: [
    { faq_id: 'f1', question: '如何申请退货？', matched: '怎么退货', dense_score: 0.83456, keyword_score: 0.5, fused_score: 0.0312, intent: 'return_refund', intent_agrees: true },
    { faq_id: 'f2', question: '退款多久到账？', matched: '退款多久到账？', dense_score: 0.61, keyword_score: 0.2, fused_score: 0.0288, intent: 'payment', intent_agrees: false },
  ],
  band: 'suggest',
  thresholds: { answer: 0.85, suggest: 0.6 },
  reply: { type: 'suggest', text: '您是不是想问：', suggestions: ['如何申请退货？'], faq_id: null, quick_replies: [] },
  index_version: 'idx-20261124',
}

describe('PlaygroundView', () => {
  it('shows intent, sentiment, band, thresholds and scored candidates for a test sentence', async () => {
    const f = fakeFetch({ 'POST /api/v1/admin/playground': () => json(result) })
    const g = consoleGlobals(f.impl)
    const w = mount(PlaygroundView, { global: g.global })
    await w.findAll('button').find((b) => b.text() === '怎么申请退货退款')!.trigger('click')
    await flushPromises()
    expect(f.calls[0].body).toEqual({ message: '怎么申请退货退款' })
    expect(w.find('[data-testid="pg-intent"]').text()).toBe('return_refund')
    const text = w.text()
    expect(text).toContain('推荐问题') // band
    expect(text).toContain('负面') // sentiment
    expect(text).toContain('answer=0.85')
    expect(text).toContain('idx-20261124')
    const rows = w.findAll('.el-table__body tr')
    expect(rows).toHaveLength(2)
    expect(rows[0].text()).toContain('如何申请退货？')
    expect(rows[0].text()).toContain('0.835') // dense
    expect(rows[0].text()).toContain('0.031') // fused
    // the FAQ's intent, and whether it agrees with the recognised one (what lets a band score be answered)
    expect(rows[0].find('[data-testid="pg-agree"]').exists()).toBe(true)
    expect(rows[1].find('[data-testid="pg-agree"]').exists()).toBe(false)
    expect(rows[1].text()).toContain('支付问题')
  })

  it('renders a null sentiment and an empty candidate list without failing', async () => {
    const f = fakeFetch({ 'POST /api/v1/admin/playground': () => json({ ...result, sentiment: null, candidates: [], index_version: null }) })
    const w = mount(PlaygroundView, { global: consoleGlobals(f.impl).global })
    await w.find('input').setValue('你好')
    await w.find('form').trigger('submit')
    await flushPromises()
    expect(w.find('[data-testid="pg-intent"]').exists()).toBe(true)
    expect(w.findAll('.el-table__body tr')).toHaveLength(0)
  })
})
