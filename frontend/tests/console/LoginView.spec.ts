import { beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import LoginView from '@/console/views/LoginView.vue'
import { useAuthStore } from '@/console/stores/auth'
import { fakeFetch, json } from '../widget/helpers'
import { consoleGlobals } from './helpers'

describe('LoginView', () => {
  beforeEach(() => sessionStorage.clear())

  it('signs an agent in and sends them to the agent desk', async () => {
    const f = fakeFetch({
      'POST /api/v1/admin/auth/login': (_u, init) => {
        const body = JSON.parse(init.body ?? '{}')
        return body.password === 'secret-pass'
          ? json({ access_token: 'jwt', token_type: 'bearer', expires_in: 3600, role: 'agent', username: body.username })
          : json({ error: { code: 'INVALID_CREDENTIALS', message: '用户名或密码错误 / Wrong', request_id: 'r' } }, 401)
      },
    })
    const g = consoleGlobals(f.impl)
    await g.router.push('/login')
    const w = mount(LoginView, { global: g.global, attachTo: document.body })
    await w.find('input[name="username"]').setValue('  xiaowang ')
    await w.find('input[name="password"]').setValue('secret-pass')
    await w.find('form').trigger('submit')
    await flushPromises()
    const auth = useAuthStore()
    expect(auth.token).toBe('jwt')
    expect(auth.role).toBe('agent')
    expect(f.calls[0].body).toEqual({ username: 'xiaowang', password: 'secret-pass' })
    await vi.waitFor(() => expect(g.router.currentRoute.value.path).toBe('/agent'), { timeout: 4000 })
    w.unmount()
  })

  it('shows the localized error and stays signed out on wrong credentials', async () => {
    const f = fakeFetch({
      'POST /api/v1/admin/auth/login': () => json({ error: { code: 'INVALID_CREDENTIALS', message: 'x / y', request_id: 'r' } }, 401),
    })
    const g = consoleGlobals(f.impl)
    await g.router.push('/login')
    const w = mount(LoginView, { global: g.global, attachTo: document.body })
    await w.find('form').trigger('submit')
    expect(w.text()).toContain('请输入用户名和密码')
    expect(f.calls).toHaveLength(0)
    await w.find('input[name="username"]').setValue('admin')
    await w.find('input[name="password"]').setValue('wrong')
    await w.find('form').trigger('submit')
    await flushPromises()
    expect(w.find('[role="alert"]').text()).toContain('用户名或密码错误')
    expect(useAuthStore().token).toBeNull()
    w.unmount()
  })
})
