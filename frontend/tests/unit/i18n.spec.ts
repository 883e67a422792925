import { describe, expect, it } from 'vitest'
import { createI18n, detectLocale, pickBilingual } from '@/shared/i18n'
import zhW from '@/locales/widget/zh-CN'
import enW from '@/locales/widget/en-US'
import zhC from '@/locales/console/zh-CN'
import enC from '@/locales/console/en-US'

/** Dotted keys of a catalog (arrays count as leaves). */
function keys(o: object, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  )
}

describe('i18n', () => {
  it('defaults to Chinese and honours an explicit or English browser locale', () => {
    expect(detectLocale(null, 'fr-FR')).toBe('zh-CN')
    expect(detectLocale(null, 'en-GB')).toBe('en-US')
    expect(detectLocale('en-US', 'zh-CN')).toBe('en-US')
    expect(detectLocale('zh-CN', 'en-US')).toBe('zh-CN')
  })
  it('interpolates, falls back to zh-CN, and switches at runtime', () => {
    const i = createI18n({ 'zh-CN': { a: '共 {n} 条', only: '仅中文', list: ['甲', '乙'] }, 'en-US': { a: '{n} in total' } }, 'en-US')
    expect(i.t('a', { n: 3 })).toBe('3 in total')
    expect(i.t('only')).toBe('仅中文')
    expect(i.tl('list')).toEqual(['甲', '乙'])
    expect(i.t('missing.key')).toBe('missing.key')
    i.locale.value = 'zh-CN'
    expect(i.t('a', { n: 3 })).toBe('共 3 条')
  })
  it('shows the matching half of a bilingual server message', () => {
    expect(pickBilingual('会话不存在 / Session not found', 'zh-CN')).toBe('会话不存在')
    expect(pickBilingual('会话不存在 / Session not found', 'en-US')).toBe('Session not found')
    expect(pickBilingual('plain', 'en-US')).toBe('plain')
  })
  it('has the same keys in zh-CN and en-US catalogs', () => {
    expect(keys(enW).sort()).toEqual(keys(zhW).sort())
    expect(keys(enC).sort()).toEqual(keys(zhC).sort())
  })
})
