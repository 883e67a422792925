/** Visitor-facing endpoints used by the embeddable widget. */
import { createApiClient, streamSse, unwrap, type SseEvent } from './http'
import type { ChatResponse, FeedbackRequest, HandoffResponse, HistoryResponse, RatingRequest } from './types'

export interface SessionCredentials {
  id: string
  token: string
}

/** The host shop's signed-in shopper: its id and the shop's signature of it (null, null: anonymous). */
export interface VisitorIdentity {
  userId: string | null
  userSignature: string | null
}

export class WidgetApi {
  private readonly client
  private readonly baseUrl: string
  private readonly fetchImpl: typeof fetch

  constructor(baseUrl: string, fetchImpl: typeof fetch = (...a) => globalThis.fetch(...a)) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
    this.fetchImpl = fetchImpl
    this.client = createApiClient({ baseUrl: this.baseUrl, fetch: fetchImpl })
  }

  private static auth(s: SessionCredentials | null): Record<string, string> {
    return s ? { 'X-Session-Token': s.token } : {}
  }

  /** `clientMessageId` stays the same on every retry of a turn: the API answers a turn it already has again
   *  instead of running (and storing) it twice. `identity` is read by the API when the turn starts a session. */
  chat(message: string, session: SessionCredentials | null, identity: VisitorIdentity | null = null, clientMessageId: string | null = null): Promise<ChatResponse> {
    return unwrap(
      this.client.POST('/api/v1/chat', {
        body: {
          message,
          session_id: session?.id ?? null,
          user_id: identity?.userId ?? null,
          user_signature: identity?.userSignature ?? null,
          client_message_id: clientMessageId,
        },
        headers: WidgetApi.auth(session),
      }),
    )
  }

  history(session: SessionCredentials): Promise<HistoryResponse> {
    return unwrap(
      this.client.GET('/api/v1/sessions/{session_id}/history', {
        params: { path: { session_id: session.id } },
        headers: WidgetApi.auth(session),
      }),
    )
  }

  handoff(session: SessionCredentials): Promise<HandoffResponse> {
    return unwrap(
      this.client.POST('/api/v1/sessions/{session_id}/handoff', {
        params: { path: { session_id: session.id } },
        headers: WidgetApi.auth(session),
      }),
    )
  }

  async feedback(session: SessionCredentials, body: FeedbackRequest): Promise<void> {
    await unwrap(this.client.POST('/api/v1/feedback', { body, headers: WidgetApi.auth(session) }))
  }

  async rate(session: SessionCredentials, body: RatingRequest): Promise<void> {
    await unwrap(
      this.client.POST('/api/v1/sessions/{session_id}/rating', {
        params: { path: { session_id: session.id } },
        body,
        headers: WidgetApi.auth(session),
      }),
    )
  }

  /** End the session on the server (logout, new conversation): its token stops working everywhere at once, also
   *  in another tab or wherever it was copied. `keepalive`: a shop's logout usually navigates away right after,
   *  which would cancel an ordinary request. A session already gone (or a wrong token) answers 404. */
  async endSession(session: SessionCredentials): Promise<void> {
    await unwrap(
      this.client.DELETE('/api/v1/sessions/{session_id}', {
        params: { path: { session_id: session.id } },
        headers: WidgetApi.auth(session),
        keepalive: true,
      }),
    )
  }

  events(session: SessionCredentials, onEvent: (e: SseEvent) => void, signal: AbortSignal, onOpen?: () => void): Promise<void> {
    const url = `${this.baseUrl}/api/v1/sessions/${encodeURIComponent(session.id)}/events`
    return streamSse(url, WidgetApi.auth(session), onEvent, signal, this.fetchImpl, onOpen)
  }
}
