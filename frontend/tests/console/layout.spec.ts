import { afterEach, describe, expect, it, vi } from 'vitest'
import { defineComponent, h, nextTick } from 'vue'
import { flushPromises, mount } from '@vue/test-utils'
import App from '@/console/App.vue'
import { pagerProps, useNarrow } from '@/console/composables/useNarrow'
import { useAuthStore } from '@/console/stores/auth'
import { fakeFetch } from '../widget/helpers'
import { consoleGlobals } from './helpers'

/** A matchMedia double: `set(true)` simulates rotating / resizing into a phone-sized viewport. */
function fakeMedia(initial: boolean) {
  const listeners = new Set<(e: { matches: boolean }) => void>()
  const list = {
    matches: initial,
    addEventListener: (_: string, l: (e: { matches: boolean }) => void) => listeners.add(l),
    removeEventListener: (_: string, l: (e: { matches: boolean }) => void) => listeners.delete(l),
  }
  return {
    matchMedia: vi.fn(() => list),
    set(v: boolean) {
      list.matches = v
      listeners.forEach((l) => l({ matches: v }))
    },
    listeners,
  }
}

async function mountApp(narrow: boolean) {
  const media = fakeMedia(narrow)
  vi.stubGlobal('matchMedia', media.matchMedia)
  const g = consoleGlobals(fakeFetch({}).impl)
  useAuthStore().signIn('t', 'admin', 'root', 3600)
  g.router.addRoute({ path: '/stub', name: 'stub', component: { render: () => h('div', 'page') }, meta: { title: 'nav.conversations' } })
  await g.router.push('/stub')
  const w = mount(App, { global: g.global, attachTo: document.body })
  await flushPromises()
  return { w, media, router: g.router }
}

afterEach(() => {
  vi.unstubAllGlobals()
  document.body.innerHTML = ''
})

describe('console layout', () => {
  it('keeps the fixed sidebar on desktops', async () => {
    const { w } = await mountApp(false)
    expect(w.find('.aside').exists()).toBe(true)
    expect(w.find('.nav-toggle').exists()).toBe(false)
    expect(w.find('.title').text()).toBe('会话记录')
    expect(w.find('.user').text()).toBe('root')
    w.unmount()
  })

  it('turns the sidebar into a drawer on phones, opened from the header and closed on navigation', async () => {
    const { w, router } = await mountApp(true)
    expect(w.find('.el-aside').exists()).toBe(false) // no fixed 208 px column squeezing the page
    const toggle = w.find('button.nav-toggle')
    expect(toggle.attributes('aria-label')).toBe('菜单')
    expect(toggle.attributes('aria-expanded')).toBe('false')
    expect(document.body.querySelectorAll('.el-drawer')).toHaveLength(0) // no hidden dialog left in the page
    expect(w.find('.title').text()).toBe('会话记录') // the title keeps its own line (ellipsis in CSS)
    expect(w.find('.user').exists()).toBe(false)

    await toggle.trigger('click')
    await flushPromises()
    expect(toggle.attributes('aria-expanded')).toBe('true')
    const items = document.body.querySelectorAll('.nav-drawer .el-menu-item')
    expect(items.length).toBeGreaterThan(3)

    await router.push('/conversations')
    await flushPromises()
    expect(toggle.attributes('aria-expanded')).toBe('false')
    expect(document.body.querySelectorAll('.nav-drawer')).toHaveLength(0)
    w.unmount()
  })

  it('follows viewport changes', async () => {
    const { w, media } = await mountApp(false)
    media.set(true)
    await nextTick()
    expect(w.find('.el-aside').exists()).toBe(false)
    expect(w.find('.nav-toggle').exists()).toBe(true)
    media.set(false)
    await nextTick()
    expect(w.find('.el-aside').exists()).toBe(true)
    w.unmount()
    expect(media.listeners.size).toBe(0) // the listener goes away with the component
  })
})

describe('useNarrow / pagerProps', () => {
  it('is false without matchMedia and gives the pager a compact layout on phones', () => {
    vi.stubGlobal('matchMedia', undefined)
    const Probe = defineComponent({ setup: () => ({ narrow: useNarrow() }), render: () => h('i') })
    expect((mount(Probe).vm as unknown as { narrow: boolean }).narrow).toBe(false)
    expect(pagerProps(true)).toEqual({ layout: 'total, prev, pager, next', pagerCount: 5, size: 'small' })
    expect(pagerProps(false).layout).toContain('sizes')
  })
})
