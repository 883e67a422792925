import { describe, expect, it } from 'vitest'
import { defineComponent, h } from 'vue'
import { mount } from '@vue/test-utils'
import { useFaqImport } from '@/console/composables/useKnowledge'
import { useApi } from '@/console/context'
import { fakeFetch, json } from '../widget/helpers'
import { consoleGlobals } from './helpers'

function withImport(fetchImpl: typeof fetch) {
  const g = consoleGlobals(fetchImpl)
  let imp!: ReturnType<typeof useFaqImport>
  const Host = defineComponent({
    setup() {
      imp = useFaqImport(useApi())
      return () => h('div')
    },
  })
  mount(Host, { global: g.global })
  return imp
}

describe('useFaqImport', () => {
  it('previews with dry_run=true, then imports the same file with dry_run=false', async () => {
    const seen: string[] = []
    const f = fakeFetch({
      'POST /api/v1/admin/faqs/import': (url, init) => {
        seen.push(url.searchParams.get('dry_run')!)
        expect(init.headers.get('Authorization')).toBe('Bearer tok')
        expect(init.headers.get('Content-Type')).toMatch(/^multipart\/form-data; boundary=/)
        const dry = url.searchParams.get('dry_run') === 'true'
        return json({ dry_run: dry, total: 3, valid: 2, created: dry ? 0 : 2, updated: 0, errors: [{ row: 3, field: 'answer', code: 'REQUIRED', message: '答案不能为空' }] })
      },
    })
    // the fake fetch parses JSON bodies; multipart bodies are read as text only
    const imp = withImport(((input: RequestInfo | URL, init?: RequestInit) => {
      const req = input instanceof Request ? input : new Request(String(input), init)
      return f.impl(new Request(req.url, { method: req.method, headers: req.headers }))
    }) as typeof fetch)
    await imp.commit() // nothing chosen: no call
    imp.choose(new File(['question,answer,category,similar\n运费,满99包邮,物流,\n'], 'faq.csv', { type: 'text/csv' }))
    await imp.commit() // no preview yet: no call
    expect(seen).toEqual([])
    await imp.dryRun()
    expect(imp.preview.value?.errors[0]).toMatchObject({ row: 3, code: 'REQUIRED' })
    const r = await imp.commit()
    expect(seen).toEqual(['true', 'false'])
    expect(r?.created).toBe(2)
    imp.choose(null)
    expect(imp.preview.value).toBeNull()
  })

  it('refuses to import when the preview has no valid rows', async () => {
    const f = fakeFetch({
      'POST /api/v1/admin/faqs/import': () => json({ dry_run: true, total: 1, valid: 0, created: 0, updated: 0, errors: [{ row: 2, field: 'question', code: 'REQUIRED', message: 'x' }] }),
    })
    const imp = withImport(((input: RequestInfo | URL, init?: RequestInit) => {
      const req = input instanceof Request ? input : new Request(String(input), init)
      return f.impl(new Request(req.url, { method: req.method, headers: req.headers }))
    }) as typeof fetch)
    imp.choose(new File(['x'], 'faq.xlsx'))
    await imp.dryRun()
    expect(await imp.commit()).toBeUndefined()
    expect(f.calls).toHaveLength(1)
  })
})
