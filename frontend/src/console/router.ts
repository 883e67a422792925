import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router'
import type { Pinia } from 'pinia'
import type { Role } from '@/api/types'
import { useAuthStore } from './stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    roles?: Role[]
    title?: string
    icon?: string
    public?: boolean
  }
}

const admin: Role[] = ['admin']
const both: Role[] = ['admin', 'agent']

export const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('./views/LoginView.vue'), meta: { public: true } },
  { path: '/', redirect: '/dashboard' },
  { path: '/dashboard', name: 'dashboard', component: () => import('./views/DashboardView.vue'), meta: { roles: admin, title: 'nav.dashboard', icon: 'DataLine' } },
  { path: '/knowledge', name: 'knowledge', component: () => import('./views/KnowledgeView.vue'), meta: { roles: admin, title: 'nav.knowledge', icon: 'Collection' } },
  { path: '/playground', name: 'playground', component: () => import('./views/PlaygroundView.vue'), meta: { roles: both, title: 'nav.playground', icon: 'Aim' } },
  { path: '/conversations', name: 'conversations', component: () => import('./views/ConversationsView.vue'), meta: { roles: both, title: 'nav.conversations', icon: 'ChatLineSquare' } },
  { path: '/unanswered', name: 'unanswered', component: () => import('./views/UnansweredView.vue'), meta: { roles: admin, title: 'nav.unanswered', icon: 'QuestionFilled' } },
  { path: '/agent', name: 'agent', component: () => import('./views/AgentView.vue'), meta: { roles: both, title: 'nav.agent', icon: 'Headset' } },
  { path: '/templates', name: 'templates', component: () => import('./views/TemplatesView.vue'), meta: { roles: admin, title: 'nav.templates', icon: 'Document' } },
  { path: '/users', name: 'users', component: () => import('./views/UsersView.vue'), meta: { roles: admin, title: 'nav.users', icon: 'User' } },
  { path: '/:pathMatch(.*)*', redirect: '/' },
]

/** Where a signed-in user lands: agents have no dashboard. */
export const homeFor = (role: Role | null) => (role === 'agent' ? '/agent' : '/dashboard')

export function createConsoleRouter(pinia: Pinia) {
  const router = createRouter({ history: createWebHashHistory(), routes })
  router.beforeEach((to) => {
    const auth = useAuthStore(pinia)
    if (to.meta.public) return auth.loggedIn && to.name === 'login' ? homeFor(auth.role) : true
    if (!auth.loggedIn) return { name: 'login', query: { redirect: to.fullPath } }
    if (to.meta.roles && auth.role && !to.meta.roles.includes(auth.role)) return homeFor(auth.role)
    return true
  })
  return router
}
