/**
 * Agent desk: the hand-off queue (waiting / active), one selected conversation with its transcript, live
 * events over SSE (bearer header, so fetch streaming) with reconnect/backoff, take over, reply, hand back.
 */
import { computed, onBeforeUnmount, ref } from 'vue'
import { ElNotification } from 'element-plus'
import type { ConsoleApi } from '@/api/console'
import { ApiError, type SseEvent } from '@/api/http'
import type { EventHandoff, EventMessage, HandoffTicket, TranscriptMessage } from '@/api/types'
import { backoffDelay, sleep } from '@/shared/retry'
import { useRequest } from './useRequest'

export function useAgentDesk(api: ConsoleApi, t: (k: string, p?: Record<string, string | number>) => string) {
  const { loading, run } = useRequest()
  const waiting = ref<HandoffTicket[]>([])
  const active = ref<HandoffTicket[]>([])
  const selected = ref<HandoffTicket | null>(null)
  const messages = ref<TranscriptMessage[]>([])
  const live = ref(false)
  let ctrl: AbortController | null = null

  async function loadQueue() {
    const [w, a] = await Promise.all([run(() => api.handoffs('waiting')), run(() => api.handoffs('active'))])
    if (w) waiting.value = w.items
    if (a) active.value = a.items
    if (selected.value) {
      const fresh = [...waiting.value, ...active.value].find((x) => x.ticket_id === selected.value?.ticket_id)
      if (fresh) selected.value = fresh
      // in neither queue (both read): closed meanwhile (another agent or an admin handed it back, the visitor's
      // session ended). Shown as ended, with the reply box off, rather than as still "服务中" taking replies.
      else if (w && a) selected.value = { ...selected.value, status: 'closed' }
    }
  }
  async function select(ticket: HandoffTicket) {
    selected.value = ticket
    messages.value = []
    const r = await run(() => api.transcript(ticket.session_id))
    if (r && selected.value?.ticket_id === ticket.ticket_id) messages.value = r.messages
  }
  async function take(ticket: HandoffTicket, okMsg: string) {
    const r = await run(() => api.take(ticket.ticket_id), okMsg)
    await loadQueue() // also on failure: another agent took it, or the visitor left and the API closed it
    if (r) await select({ ...ticket, ...r })
  }
  /** One reply in flight at a time: a second Enter (or click) while the first is on its way is not a second reply. */
  const sending = ref(false)
  async function send(text: string): Promise<boolean> {
    const ticket = selected.value
    const body = text.trim()
    if (!ticket || ticket.status !== 'active' || !body || sending.value) return false
    sending.value = true
    try {
      const r = await run(() => api.agentSend(ticket.ticket_id, body))
      if (!r) return false
      appendMessage({ id: r.id, role: 'agent', text: r.text, created_at: r.created_at })
      return true
    } finally {
      sending.value = false
    }
  }
  async function release(okMsg: string) {
    const ticket = selected.value
    if (!ticket) return
    const r = await run(() => api.release(ticket.ticket_id), okMsg)
    if (r) {
      selected.value = null
      messages.value = []
      await loadQueue()
    }
  }
  /** The event stream keeps no backlog: after a reconnect, re-read the queue and the open conversation. */
  async function catchUp() {
    await loadQueue()
    const ticket = selected.value
    if (!ticket) return
    try {
      const r = await api.transcript(ticket.session_id)
      if (selected.value?.ticket_id === ticket.ticket_id) r.messages.forEach(appendMessage)
    } catch {
      /* shown again on the next reconnect or refresh */
    }
  }
  function appendMessage(m: TranscriptMessage) {
    if (!messages.value.some((x) => x.id === m.id)) messages.value.push(m)
  }

  function onEvent(ev: SseEvent) {
    let data: unknown
    try {
      data = JSON.parse(ev.data)
    } catch {
      return
    }
    live.value = true
    if (ev.event === 'message') {
      const m = data as EventMessage
      if (selected.value && m.session_id === selected.value.session_id)
        appendMessage({ id: m.id, role: m.role, text: m.text, created_at: m.created_at })
    } else if (ev.event === 'handoff') {
      const h = data as EventHandoff
      if (h.status === 'waiting') ElNotification({ title: t('agent.newTicket'), message: h.session_id ?? '', type: 'warning', duration: 4000 })
      void loadQueue()
    }
  }
  async function connect() {
    ctrl?.abort()
    const c = new AbortController()
    ctrl = c
    let attempt = 0
    let opens = 0
    const onOpen = () => {
      if (opens++ > 0) void catchUp() // what happened while the stream was down
    }
    while (!c.signal.aborted) {
      const started = Date.now()
      try {
        live.value = true
        await api.agentEvents(onEvent, c.signal, onOpen)
      } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) break
      }
      if (c.signal.aborted) break
      live.value = false
      if (Date.now() - started > 30_000) attempt = 0
      await sleep(backoffDelay(attempt++, 1000, 30_000))
    }
  }
  function disconnect() {
    ctrl?.abort()
    ctrl = null
  }
  onBeforeUnmount(disconnect)

  const mine = computed(() => selected.value?.status === 'active')
  return { loading, waiting, active, selected, messages, live, mine, sending, loadQueue, select, take, send, release, connect, disconnect }
}
