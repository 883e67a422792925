import { defineStore } from 'pinia'
import type { Role } from '@/api/types'

const KEY = 'xiaoke.console.auth.v1'

interface Persisted {
  token: string
  role: Role
  username: string
  expiresAt: number
}

function load(): Persisted | null {
  try {
    const raw = sessionStorage.getItem(KEY)
    if (!raw) return null
    const v = JSON.parse(raw) as Persisted
    return v.expiresAt > Date.now() ? v : null
  } catch {
    return null
  }
}

/** Bearer token kept in sessionStorage (per tab, gone when the tab closes). */
export const useAuthStore = defineStore('xiaoke-auth', {
  state: () => {
    const p = load()
    return { token: p?.token ?? null, role: p?.role ?? null, username: p?.username ?? null, expiresAt: p?.expiresAt ?? 0 } as {
      token: string | null
      role: Role | null
      username: string | null
      expiresAt: number
    }
  },
  getters: {
    loggedIn: (s) => !!s.token && s.expiresAt > Date.now(),
    isAdmin: (s) => s.role === 'admin',
  },
  actions: {
    signIn(token: string, role: Role, username: string, expiresIn: number) {
      this.token = token
      this.role = role
      this.username = username
      this.expiresAt = Date.now() + expiresIn * 1000
      try {
        sessionStorage.setItem(KEY, JSON.stringify({ token, role, username, expiresAt: this.expiresAt }))
      } catch {
        /* storage disabled: stay signed in for this page only */
      }
    },
    signOut() {
      this.token = null
      this.role = null
      this.username = null
      this.expiresAt = 0
      try {
        sessionStorage.removeItem(KEY)
      } catch {
        /* ignore */
      }
    },
  },
})
