/**
 * All widget behaviour: session restore, sending with retry/backoff, offline state, live agent messages over
 * SSE, hand-off, feedback and rating. Components only render the store and call these actions.
 */
import { ApiError } from '@/api/http'
import type { SseEvent } from '@/api/http'
import type { EventHandoff, EventMessage, HandoffStatus, HistoryMessage, ReplyType } from '@/api/types'
import type { SessionCredentials, WidgetApi } from '@/api/widget'
import type { I18n } from '@/shared/i18n'
import { pickBilingual } from '@/shared/i18n'
import { backoffDelay, sleep as realSleep, withRetry } from '@/shared/retry'
import { makeMessage, useChatStore, type ChatMessage } from '../store'
import type { WidgetConfig } from '../context'

const REPLY_TYPES: readonly string[] = ['answer', 'suggest', 'clarify', 'slot_prompt', 'template', 'fallback', 'handoff', 'degraded', 'agent_pending']
const asReplyType = (v: string | null | undefined): ReplyType | null => (v && REPLY_TYPES.includes(v) ? (v as ReplyType) : null)

export interface ChatDeps {
  api: WidgetApi
  i18n: I18n
  config: WidgetConfig
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null
  sleep?: (ms: number) => Promise<void>
  /** Retries for one chat turn (the first try not counted). */
  retries?: number
}

/** localStorage, or null where reading it throws (privacy mode, sandboxed iframe, storage blocked). */
export function safeStorage(): Storage | null {
  try {
    return globalThis.localStorage ?? null
  } catch {
    return null // storage disabled (privacy mode, sandboxed iframe)
  }
}

export function useChat(deps: ChatDeps) {
  const store = useChatStore()
  const { api, i18n, config } = deps
  const { t } = i18n
  const storage = deps.storage === undefined ? safeStorage() : deps.storage
  const sleep = deps.sleep ?? realSleep
  const retryOpts = { retries: deps.retries ?? 3, baseMs: 600, maxMs: 8000, sleep }
  let events: AbortController | null = null
  /** Set when the widget is unmounted (XiaoKeWidget.destroy()): a turn or restore still in flight must not open
   *  an event stream (and its reconnect loop) for a widget that is gone. */
  let disposed = false
  /** Turns go out one at a time, in order: the second message of a new visitor must carry the session the
   *  first one created (sent side by side, each would open its own session). */
  let turns: Promise<void> = Promise.resolve()
  /** Bumped when the conversation ends here (logout(), newConversation()): a turn, restore, hand-off request or
   *  rating still in flight belongs to the conversation that ended, and its answer must not bring that session
   *  (token saved again) or its messages into what comes next. */
  let epoch = 0
  /** Thrown instead of retrying a turn whose conversation ended meanwhile (not an ApiError: never retried). */
  const ended = new Error('conversation ended')

  // ---- session persistence -------------------------------------------------------------------------
  function loadSession(): SessionCredentials | null {
    try {
      const raw = storage?.getItem(config.storageKey)
      if (!raw) return null
      const v = JSON.parse(raw) as Partial<SessionCredentials>
      return typeof v.id === 'string' && typeof v.token === 'string' ? { id: v.id, token: v.token } : null
    } catch {
      return null
    }
  }
  function saveSession(s: SessionCredentials | null) {
    try {
      if (s) storage?.setItem(config.storageKey, JSON.stringify(s))
      else storage?.removeItem(config.storageKey)
    } catch {
      /* storage full or disabled: the conversation just won't survive a reload */
    }
  }

  /** The server no longer knows our session (expired, or lost on a restart). */
  const sessionGone = (e: unknown) => e instanceof ApiError && (e.code === 'SESSION_NOT_FOUND' || e.status === 410)

  /** Forget the dead session and tell the visitor; the next message starts a new conversation. */
  function expireSession() {
    stopEvents()
    saveSession(null)
    store.session = null
    store.handoff = 'none'
    store.notice = t('errors.SESSION_NOT_FOUND')
  }

  function errorText(e: unknown): string {
    if (e instanceof ApiError) {
      if (e.code === 'RATE_LIMITED' && e.retryAfterMs)
        return t('errors.RATE_LIMITED_WAIT', { n: Math.ceil(e.retryAfterMs / 1000) })
      const known = t(`errors.${e.code}`)
      if (known !== `errors.${e.code}`) return known
      if (e.message) return pickBilingual(e.message, i18n.locale.value)
    }
    return t('errors.generic')
  }

  const fromHistory = (m: HistoryMessage, sessionId: string): ChatMessage =>
    makeMessage({
      id: m.id,
      role: m.role,
      text: m.text,
      createdAt: m.created_at,
      replyType: asReplyType(m.reply_type),
      suggestions: m.suggestions ?? [],
      sessionId: m.role === 'user' ? null : sessionId,
    })

  // ---- restore ---------------------------------------------------------------------------------------
  /**
   * Re-read the saved conversation. Turns wait for it (a message sent meanwhile belongs to the restored session,
   * not to a new one), and what the visitor sent meanwhile stays on screen after the history.
   */
  function restore(): Promise<void> {
    const done = doRestore()
    turns = turns.then(() => done).catch(() => undefined)
    return done
  }

  async function doRestore(): Promise<void> {
    const saved = store.session ?? loadSession()
    if (!saved) return
    const started = epoch
    store.restoring = true
    try {
      const h = await withRetry(() => api.history(saved), {
        ...retryOpts,
        onRetry: () => (store.connection = 'reconnecting'),
      })
      if (epoch !== started) return // logged out meanwhile
      store.session = saved
      const restored = h.messages.map((m) => fromHistory(m, saved.id))
      const known = new Set(restored.map((m) => m.id))
      store.messages = [...restored, ...store.messages.filter((m) => !m.id || !known.has(m.id))]
      store.handoff = h.handoff.status
      store.connection = 'online'
      startEvents()
    } catch (e) {
      if (epoch !== started) return
      if (e instanceof ApiError && (e.status === 404 || e.status === 401 || e.status === 403)) {
        saveSession(null) // expired or foreign session: start fresh
        store.session = null
        store.connection = 'online'
      } else {
        store.session = saved
        store.connection = 'offline'
      }
    } finally {
      if (epoch === started) store.restoring = false
    }
  }

  // ---- sending ---------------------------------------------------------------------------------------
  async function send(raw: string, existing?: ChatMessage): Promise<void> {
    const text = raw.trim()
    if (!text) return
    if (text.length > config.maxChars) {
      store.notice = t('composer.tooLong', { n: config.maxChars })
      return
    }
    store.notice = null
    let mine: ChatMessage
    if (existing) mine = existing
    else {
      store.push(makeMessage({ role: 'user', text, status: 'pending' }))
      mine = store.messages[store.messages.length - 1] // the reactive copy
    }
    mine.status = 'pending'
    // A turn queued behind another belongs to the conversation it was typed in: once that one has ended (logout,
    // login, new conversation), it is not sent: it would open the next conversation, as the next identity.
    const queuedIn = epoch
    const turn = turns.then(() => (epoch === queuedIn ? deliver(text, mine) : undefined))
    turns = turn.catch(() => undefined)
    return turn
  }

  async function deliver(text: string, mine: ChatMessage): Promise<void> {
    const started = epoch
    // The conversation this turn belongs to, on every retry. Read again per retry, it let a retry after a new
    // conversation was started carry the old message into the new session (or open one with it).
    const session = store.session
    store.typing = !store.withAgent
    try {
      const identity = { userId: config.userId, userSignature: config.userSignature }
      const res = await withRetry(() => (epoch === started ? api.chat(text, session, identity, mine.key) : Promise.reject(ended)), {
        ...retryOpts,
        onRetry: () => {
          if (epoch === started) store.connection = 'reconnecting'
        },
      })
      if (epoch !== started) {
        // The conversation ended meanwhile (logout, new conversation). If this turn opened its session, nobody
        // holds that token: end the session too (and any hand-off request it queued).
        if (res.session_token) endRemotely({ id: res.session_id, token: res.session_token })
        return
      }
      store.connection = 'online'
      mine.status = 'sent'
      if (res.identity === 'rejected')
        // for the shop's developers: the visitor chats on, anonymously (order questions are told to log in)
        console.warn('XiaoKe widget: the API did not accept data-user-signature for data-user-id (missing, wrong or expired); this conversation is anonymous')
      if (!store.session || res.session_id !== store.session.id) {
        if (res.session_token) {
          store.session = { id: res.session_id, token: res.session_token }
          saveSession(store.session)
          startEvents()
        }
      }
      const reply = res.reply
      // Follow the server's hand-off state, not the reply type: reply type `handoff` is also a mere *offer*
      // of a human (status stays `none`, quick reply 转人工), and then nobody is queued yet.
      if (!(reply.type === 'agent_pending' && !reply.text))
        store.push(
          makeMessage({
            id: res.message_id,
            role: 'bot',
            text: reply.text,
            replyType: reply.type,
            suggestions: reply.suggestions ?? [],
            quickReplies: reply.quick_replies ?? [],
            sessionId: res.session_id,
          }),
        )
      if (res.handoff?.status) applyHandoff(res.handoff.status)
    } catch (e) {
      if (epoch !== started) return
      if (sessionGone(e) && session) {
        // The server forgot our session (TTL): start a new one and resend this message once.
        if (store.session?.id === session.id) expireSession() // (unless the event stream found it gone first)
        return deliver(text, mine)
      }
      mine.status = 'failed'
      if (e instanceof ApiError && e.transient && e.status === 0) store.connection = 'offline'
      else store.notice = errorText(e)
    } finally {
      if (epoch === started) store.typing = false
    }
  }

  /** Resend a failed message. It moves to the end of the conversation, where its reply will appear and where the
   *  server (and so the history after a reload) puts it. */
  function resend(m: ChatMessage) {
    const at = store.messages.findIndex((x) => x.key === m.key)
    if (at < 0) return
    if (at < store.messages.length - 1) store.messages.push(...store.messages.splice(at, 1))
    return send(store.messages[store.messages.length - 1].text, store.messages[store.messages.length - 1])
  }

  /** "Retry" in the offline banner: reconnect, then resend what failed. */
  async function reconnect(): Promise<void> {
    store.connection = 'reconnecting'
    if (store.session && !store.messages.length) await restore()
    const failed = store.messages.filter((m) => m.status === 'failed')
    if (!failed.length && store.connection === 'reconnecting') {
      try {
        if (store.session) await api.history(store.session)
        store.connection = 'online'
        if (store.session && !events) startEvents()
      } catch {
        store.connection = 'offline'
      }
      return
    }
    for (const m of failed) await resend(m)
  }

  // ---- hand-off, feedback, rating -----------------------------------------------------------------------
  /**
   * Follow the server's hand-off status (chat response, hand-off response or SSE event, whichever arrives first)
   * and tell the visitor when it changes. `closed` (SSE) and `none` both mean nobody is queued.
   */
  function applyHandoff(status: HandoffStatus | 'closed', agent?: string | null) {
    const idle = (s: HandoffStatus | 'closed') => (s === 'closed' ? 'none' : s)
    if (idle(status) === idle(store.handoff)) return
    const previous = store.handoff
    store.handoff = status
    if (status === 'active')
      store.push(makeMessage({ role: 'system', text: agent ? t('handoff.activeAgent', { agent }) : t('handoff.active') }))
    else if (status === 'waiting') store.push(makeMessage({ role: 'system', text: t('handoff.waiting') }))
    // no agent ever joined (the ticket was closed while queued): "the agent has left" would be untrue
    else store.push(makeMessage({ role: 'system', text: t(previous === 'waiting' ? 'handoff.unavailable' : 'handoff.closed') }))
  }

  async function requestHandoff(renewed = false): Promise<void> {
    if (store.withAgent) return
    if (!store.session) {
      await send(t('handoff.button'))
      if (!store.session || store.withAgent) return
    }
    const session = store.session
    if (!session) return
    const started = epoch
    try {
      const res = await withRetry(() => api.handoff(session), retryOpts)
      if (epoch !== started) return // logged out meanwhile
      applyHandoff(res?.status === 'active' ? 'active' : 'waiting')
    } catch (e) {
      if (epoch !== started) return
      if (sessionGone(e) && store.session?.id === session.id) {
        expireSession()
        // ask again in a new conversation (its 转人工 message opens the ticket), once
        if (!renewed) return requestHandoff(true)
        return
      }
      store.notice = e instanceof ApiError && e.code !== 'HANDOFF_STATE' ? t('handoff.failed') : errorText(e)
    }
  }

  /** Whether `m` can still get thumbs: a bot reply of the current session (an expired conversation's token is
   *  gone; the new one's would be refused for it, which used to look like the *new* session had expired). */
  const canVote = (m: ChatMessage): boolean =>
    !!store.session && !!m.id && (m.sessionId === null || m.sessionId === store.session.id)

  async function feedback(m: ChatMessage, rating: 'up' | 'down'): Promise<void> {
    const session = store.session
    if (!session || !m.id || m.feedback || !canVote(m)) return
    const previous = m.feedback
    m.feedback = rating
    try {
      await api.feedback(session, { message_id: m.id, rating, session_id: session.id })
    } catch (e) {
      m.feedback = previous
      if (sessionGone(e)) {
        if (store.session?.id === session.id) expireSession()
      } else store.notice = errorText(e)
    }
  }

  /** The end-of-chat rating in flight: a second click on 提交评价 must not store a second rating. */
  let rating: Promise<boolean> | null = null

  function rate(stars: number, comment: string): Promise<boolean> {
    if (!rating) rating = submitRating(stars, comment).finally(() => (rating = null))
    return rating
  }

  async function submitRating(stars: number, comment: string): Promise<boolean> {
    if (!store.session) {
      store.rated = true
      return true
    }
    const started = epoch
    try {
      await api.rate(store.session, { rating: stars, comment: comment.trim() || null })
      if (epoch !== started) return false
      store.rated = true
      return true
    } catch (e) {
      if (epoch !== started) return false
      if (sessionGone(e)) expireSession()
      else store.notice = errorText(e)
      return false
    }
  }

  /** End a session on the server, best effort: not awaited, not retried, any failure ignored (the UI never waits
   *  for it; a session it cannot reach ends by its TTL, one already gone answers 404). */
  function endRemotely(session: SessionCredentials) {
    api.endSession(session).catch(() => undefined)
  }

  /**
   * End the conversation on screen, for newConversation() and logout(): answers still on their way are dropped
   * (and turns still retrying stop), the event stream stops, the saved token is removed, and the session is ended
   * on the server with its own credentials, so the token stops working wherever else it is held (another tab, a
   * copy) and a queued or served hand-off is closed for the agents.
   */
  function endConversation() {
    epoch++
    turns = Promise.resolve() // the next conversation's first message need not wait for the old one's retries
    const session = store.session ?? loadSession() // during a restore, only the saved one
    stopEvents()
    saveSession(null)
    if (session) endRemotely(session)
  }

  function newConversation() {
    endConversation()
    store.resetConversation()
    store.restoring = false
    store.connection = 'online' // what said otherwise were the old conversation's retries, now stopped
  }

  /**
   * The shop's shopper logged out (XiaoKeWidget.logout()): end their conversation here and on the server. Left in
   * localStorage, or alive on the server, the session token would let the next user of the browser read the
   * conversation, orders included, through the history endpoint. Everything on screen, the draft included, is
   * cleared. The panel stays as open or closed as it was.
   */
  function logout() {
    endConversation()
    const open = store.open
    store.$reset()
    store.open = open
  }

  // ---- live events (agent messages, hand-off state) -------------------------------------------------------
  function onEvent(ev: SseEvent, sessionId: string) {
    let payload: unknown
    try {
      payload = JSON.parse(ev.data)
    } catch {
      return
    }
    store.connection = 'online'
    if (ev.event === 'message') {
      const m = payload as EventMessage
      if (!m || typeof m.text !== 'string' || m.role === 'user') return
      store.push(makeMessage({ id: m.id, role: m.role, text: m.text, createdAt: m.created_at, sessionId }))
      if (m.role === 'agent') store.typing = false
    } else if (ev.event === 'handoff') {
      const h = payload as EventHandoff
      if (h && typeof h.status === 'string') applyHandoff(h.status, h.agent)
    }
  }

  /**
   * The event stream has no backlog: whatever an agent (or the bot handing back) said while it was down is only
   * in the history. Add the messages we have not shown yet and follow the hand-off state.
   */
  async function catchUp(session: SessionCredentials): Promise<void> {
    try {
      const h = await api.history(session)
      if (store.session?.id !== session.id) return
      for (const m of h.messages) if (m.role !== 'user') store.push(fromHistory(m, session.id)) // push skips ids already shown
      applyHandoff(h.handoff.status)
    } catch {
      /* the next reconnect tries again */
    }
  }

  function startEvents() {
    const session = store.session
    if (!session || events || disposed) return
    const ctrl = new AbortController()
    events = ctrl
    void (async () => {
      let attempt = 0
      let opens = 0
      const onOpen = () => {
        if (opens++ > 0) void catchUp(session) // a reconnect: fetch what was missed while the stream was down
      }
      while (!ctrl.signal.aborted && store.session?.id === session.id) {
        const opened = Date.now()
        try {
          await api.events(session, (ev) => onEvent(ev, session.id), ctrl.signal, onOpen)
          attempt = 0
        } catch (e) {
          if (sessionGone(e)) {
            if (!ctrl.signal.aborted && store.session?.id === session.id) expireSession()
            break
          }
          if (e instanceof ApiError && (e.status === 404 || e.status === 401 || e.status === 403)) break
          if (Date.now() - opened > 30_000) attempt = 0
        }
        if (ctrl.signal.aborted) break
        await sleep(backoffDelay(attempt++, 1000, 30_000))
      }
      if (events === ctrl) events = null
    })()
  }

  function stopEvents() {
    events?.abort()
    events = null
  }

  /** The widget is going away: close the event stream and open no new one. */
  function dispose() {
    disposed = true
    stopEvents()
  }

  return { store, restore, send, resend, reconnect, requestHandoff, feedback, canVote, rate, newConversation, logout, startEvents, stopEvents, dispose }
}

export type ChatController = ReturnType<typeof useChat>
