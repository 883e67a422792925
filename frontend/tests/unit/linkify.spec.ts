import { describe, expect, it } from 'vitest'
import { linkify, safeHref } from '@/shared/linkify'

describe('safeHref', () => {
  it('accepts http and https', () => {
    expect(safeHref('https://shop.example.com/a?b=1')).toBe('https://shop.example.com/a?b=1')
    expect(safeHref('http://example.com')).toBe('http://example.com/')
  })
  it('rejects other schemes and credentials', () => {
    expect(safeHref('javascript:alert(1)')).toBeNull()
    expect(safeHref('data:text/html,<b>x</b>')).toBeNull()
    expect(safeHref('https://user:pw@evil.example')).toBeNull()
    expect(safeHref('not a url')).toBeNull()
  })
})

describe('linkify', () => {
  it('splits text and links, trimming trailing punctuation and Chinese punctuation', () => {
    const segs = linkify('详情见 https://shop.example.com/help。谢谢 (see http://a.example/x).')
    expect(segs).toEqual([
      { kind: 'text', text: '详情见 ' },
      { kind: 'link', text: 'https://shop.example.com/help', href: 'https://shop.example.com/help' },
      { kind: 'text', text: '。谢谢 (see ' },
      { kind: 'link', text: 'http://a.example/x', href: 'http://a.example/x' },
      { kind: 'text', text: ').' },
    ])
  })
  it('never turns javascript: into a link', () => {
    const segs = linkify('点这里 javascript:alert(1) <a href="javascript:alert(1)">x</a>')
    expect(segs.every((s) => s.kind === 'text')).toBe(true)
    expect(segs.map((s) => s.text).join('')).toBe('点这里 javascript:alert(1) <a href="javascript:alert(1)">x</a>')
  })
})
