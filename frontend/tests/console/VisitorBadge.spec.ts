import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import VisitorBadge from '@/console/components/VisitorBadge.vue'
import type { VisitorIdentity } from '@/api/types'
import { fakeFetch } from '../widget/helpers'
import { consoleGlobals } from './helpers'

function render(visitor: VisitorIdentity | null | undefined, locale: 'zh-CN' | 'en-US' = 'zh-CN') {
  const g = consoleGlobals(fakeFetch({}).impl)
  g.i18n.locale.value = locale
  return mount(VisitorBadge, { props: { visitor }, global: g.global })
}

describe('VisitorBadge', () => {
  it('names the customer the shop verified, and tells the agent they need no further proof', () => {
    const w = render({ verified: true, customer_id: 'demo_user_1001' })
    const tag = w.find('.visitor-badge')
    expect(tag.text()).toBe('已验证 · demo_user_1001')
    expect(tag.classes()).toContain('is-verified')
    expect(tag.attributes('title')).toContain('demo_user_1001')
    expect(tag.attributes('title')).toContain('无需再要求证明身份')
    const en = render({ verified: true, customer_id: 'demo_user_1001' }, 'en-US').find('.visitor-badge')
    expect(en.text()).toBe('Verified · demo_user_1001')
    expect(en.attributes('title')).toContain('without asking them to prove who they are')
  })

  it('shows an anonymous visitor as such, with the warning that their claims are unchecked', () => {
    const w = render({ verified: false, customer_id: null })
    const tag = w.find('.visitor-badge')
    expect(tag.text()).toBe('匿名访客')
    expect(tag.classes()).toContain('is-anonymous')
    expect(tag.attributes('title')).toContain('均未核实')
    expect(tag.attributes('title')).toContain('请勿透露')
    const en = render({ verified: false, customer_id: null }, 'en-US').find('.visitor-badge')
    expect(en.text()).toBe('Anonymous visitor')
    expect(en.attributes('title')).toContain('is unchecked')
  })

  it('never shows an id that is not marked verified, nor guesses without the field', () => {
    for (const visitor of [{ verified: false, customer_id: 'u_claimed' }, { verified: true, customer_id: null }, null, undefined]) {
      const tag = render(visitor).find('.visitor-badge')
      expect(tag.text()).toBe('匿名访客')
      expect(tag.html()).not.toContain('u_claimed')
    }
  })

  it('shows a customer id as text, never as markup', () => {
    const id = '<img src=x onerror=alert(1)>{id}'
    const w = render({ verified: true, customer_id: id })
    expect(w.find('img').exists()).toBe(false)
    expect(w.find('.visitor-badge').text()).toBe(`已验证 · ${id}`)
  })
})
