/** Console (admin / agent) endpoints. Bearer token from the auth store; a 401 signs the user out. */
import { ApiError, createApiClient, streamSse, toApiError, unwrap, type ApiClient, type SseEvent } from './http'
import type {
  AcceptRequest,
  ConversationQuery,
  FaqId,
  FaqUpdate,
  FaqWrite,
  LoginResponse,
  UserCreate,
  UserId,
} from './types'

export interface ConsoleApiOptions {
  baseUrl: string
  token: () => string | null
  onUnauthorized: () => void
  fetch?: typeof fetch
}

export function createConsoleApi(opts: ConsoleApiOptions) {
  const fetchImpl = opts.fetch ?? ((...a: Parameters<typeof fetch>) => globalThis.fetch(...a))
  const baseUrl = opts.baseUrl.replace(/\/+$/, '')
  const authHeaders = (): Record<string, string> => {
    const t = opts.token()
    return t ? { Authorization: `Bearer ${t}` } : {}
  }
  const c: ApiClient = createApiClient({ baseUrl, headers: authHeaders, onUnauthorized: opts.onUnauthorized, fetch: fetchImpl })

  async function download(path: string, fallbackName: string): Promise<{ blob: Blob; filename: string }> {
    let res: Response
    try {
      res = await fetchImpl(`${baseUrl}${path}`, { headers: authHeaders() })
    } catch {
      throw new ApiError(0, 'NETWORK', '')
    }
    if (!res.ok) {
      if (res.status === 401) opts.onUnauthorized()
      throw toApiError(res.status, await res.json().catch(() => undefined), res.headers)
    }
    const cd = res.headers.get('Content-Disposition') ?? ''
    const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd)
    const filename = m ? decodeURIComponent(m[1] ?? m[2]) : fallbackName
    return { blob: await res.blob(), filename }
  }

  return {
    login: (username: string, password: string): Promise<LoginResponse> =>
      unwrap(c.POST('/api/v1/admin/auth/login', { body: { username, password } })),
    me: () => unwrap(c.GET('/api/v1/admin/me')),

    users: () => unwrap(c.GET('/api/v1/admin/users')),
    createUser: (body: UserCreate) => unwrap(c.POST('/api/v1/admin/users', { body })),
    deleteUser: (id: UserId) => unwrap(c.DELETE('/api/v1/admin/users/{user_id}', { params: { path: { user_id: id } } })),

    faqs: (q: { q?: string; category?: string; page?: number; page_size?: number }) =>
      unwrap(c.GET('/api/v1/admin/faqs', { params: { query: q } })),
    categories: () => unwrap(c.GET('/api/v1/admin/faqs/categories')),
    createFaq: (body: FaqWrite) => unwrap(c.POST('/api/v1/admin/faqs', { body })),
    updateFaq: (id: FaqId, body: FaqUpdate) => unwrap(c.PUT('/api/v1/admin/faqs/{faq_id}', { params: { path: { faq_id: id } }, body })),
    deleteFaq: (id: FaqId) => unwrap(c.DELETE('/api/v1/admin/faqs/{faq_id}', { params: { path: { faq_id: id } } })),
    importFaqs: (file: File, dryRun: boolean) => {
      const form = new FormData()
      form.append('file', file)
      return unwrap(
        c.POST('/api/v1/admin/faqs/import', {
          params: { query: { dry_run: dryRun } },
          // multipart: let the browser set the boundary
          body: form as unknown as { file: string },
          bodySerializer: (b: unknown) => b as FormData,
        }),
      )
    },
    exportFaqs: (format: 'csv' | 'xlsx') => download(`/api/v1/admin/faqs/export?format=${format}`, `faq.${format}`),

    indexStatus: () => unwrap(c.GET('/api/v1/admin/index')),
    publishIndex: () => unwrap(c.POST('/api/v1/admin/index/publish')),
    activateIndex: (version: string) => unwrap(c.POST('/api/v1/admin/index/{version}/activate', { params: { path: { version } } })),

    templates: () => unwrap(c.GET('/api/v1/admin/templates')),
    saveTemplate: (key: string, variants: string[]) =>
      unwrap(c.PUT('/api/v1/admin/templates/{key}', { params: { path: { key } }, body: { variants } })),

    playground: (message: string) => unwrap(c.POST('/api/v1/admin/playground', { body: { message } })),

    conversations: (query: ConversationQuery) => unwrap(c.GET('/api/v1/admin/conversations', { params: { query } })),
    transcript: (sessionId: string) =>
      unwrap(c.GET('/api/v1/admin/conversations/{session_id}', { params: { path: { session_id: sessionId } } })),

    unanswered: (days: number) => unwrap(c.GET('/api/v1/admin/unanswered', { params: { query: { days } } })),
    acceptCluster: (clusterId: string, body: AcceptRequest) =>
      unwrap(c.POST('/api/v1/admin/unanswered/{cluster_id}/accept', { params: { path: { cluster_id: clusterId } }, body })),

    analytics: (dateFrom: string, dateTo: string) =>
      unwrap(c.GET('/api/v1/admin/analytics', { params: { query: { date_from: dateFrom, date_to: dateTo } } })),

    handoffs: (status: 'waiting' | 'active' | 'closed') => unwrap(c.GET('/api/v1/admin/handoffs', { params: { query: { status } } })),
    take: (ticketId: string) => unwrap(c.POST('/api/v1/admin/handoffs/{ticket_id}/take', { params: { path: { ticket_id: ticketId } } })),
    agentSend: (ticketId: string, text: string) =>
      unwrap(c.POST('/api/v1/admin/handoffs/{ticket_id}/messages', { params: { path: { ticket_id: ticketId } }, body: { text } })),
    release: (ticketId: string) =>
      unwrap(c.POST('/api/v1/admin/handoffs/{ticket_id}/release', { params: { path: { ticket_id: ticketId } } })),
    agentEvents: (onEvent: (e: SseEvent) => void, signal: AbortSignal, onOpen?: () => void) =>
      streamSse(`${baseUrl}/api/v1/admin/events`, authHeaders(), onEvent, signal, fetchImpl, onOpen),
  }
}

export type ConsoleApi = ReturnType<typeof createConsoleApi>
