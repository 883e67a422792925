import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { createConsoleRouter } from '@/console/router'
import { useAuthStore } from '@/console/stores/auth'

describe('console router guard', () => {
  beforeEach(() => sessionStorage.clear())

  it('sends signed-out users to the login page and remembers where they were going', async () => {
    const pinia = createPinia()
    setActivePinia(pinia)
    const router = createConsoleRouter(pinia)
    await router.push('/conversations')
    expect(router.currentRoute.value.name).toBe('login')
    expect(router.currentRoute.value.query.redirect).toBe('/conversations')
  })

  it('keeps agents out of admin pages and lets admins in', async () => {
    const pinia = createPinia()
    setActivePinia(pinia)
    const router = createConsoleRouter(pinia)
    const auth = useAuthStore()
    auth.signIn('t', 'agent', 'xiaowang', 3600)
    await router.push('/knowledge')
    expect(router.currentRoute.value.path).toBe('/agent')
    await router.push('/conversations')
    expect(router.currentRoute.value.path).toBe('/conversations')
    await router.push('/login')
    expect(router.currentRoute.value.path).toBe('/agent') // already signed in

    auth.signIn('t2', 'admin', 'root', 3600)
    await router.push('/knowledge')
    expect(router.currentRoute.value.path).toBe('/knowledge')
  })

  it('treats an expired token as signed out', async () => {
    const pinia = createPinia()
    setActivePinia(pinia)
    const router = createConsoleRouter(pinia)
    useAuthStore().signIn('t', 'admin', 'root', -1)
    await router.push('/dashboard')
    expect(router.currentRoute.value.name).toBe('login')
  })
})
