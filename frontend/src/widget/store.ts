import { defineStore } from 'pinia'
import type { SessionCredentials } from '@/api/widget'
import type { HandoffStatus, ReplyType } from '@/api/types'

export type Role = 'user' | 'bot' | 'agent' | 'system'
export type Connection = 'online' | 'offline' | 'reconnecting'

export interface ChatMessage {
  /** Local key, unique within the panel; a visitor message's key is its client_message_id (same on retries). */
  key: string
  /** Server id (bot replies: the message_id used for feedback); null while unsent. */
  id: string | null
  role: Role
  text: string
  createdAt: string
  replyType: ReplyType | null
  suggestions: string[]
  quickReplies: string[]
  status: 'sent' | 'pending' | 'failed'
  feedback: 'up' | 'down' | null
  /** The session a bot/agent message was said in (null for the visitor's own and local system lines). Thumbs
   *  need that session's token: a message of an expired conversation cannot be voted on from a new one. */
  sessionId: string | null
}

let seq = 0
export const nextKey = () => `m${Date.now().toString(36)}${(seq++).toString(36)}`

export function makeMessage(part: Partial<ChatMessage> & Pick<ChatMessage, 'role' | 'text'>): ChatMessage {
  return {
    key: nextKey(),
    id: null,
    createdAt: new Date().toISOString(),
    replyType: null,
    suggestions: [],
    quickReplies: [],
    status: 'sent',
    feedback: null,
    sessionId: null,
    ...part,
  }
}

export const useChatStore = defineStore('xiaoke-chat', {
  state: () => ({
    open: false,
    session: null as SessionCredentials | null,
    messages: [] as ChatMessage[],
    handoff: 'none' as HandoffStatus | 'closed',
    typing: false,
    connection: 'online' as Connection,
    unread: 0,
    /** Localized notice shown above the composer (errors); null when none. */
    notice: null as string | null,
    ratingOpen: false,
    rated: false,
    restoring: false,
    /** What the visitor is typing: kept here, not in the panel, so closing the panel does not throw it away. */
    draft: '',
  }),
  getters: {
    hasUserMessages: (s) => s.messages.some((m) => m.role === 'user'),
    withAgent: (s) => s.handoff === 'waiting' || s.handoff === 'active',
  },
  actions: {
    push(msg: ChatMessage) {
      if (msg.id && msg.role !== 'user' && this.messages.some((m) => m.id === msg.id && m.role === msg.role)) return false
      this.messages.push(msg)
      if (!this.open && msg.role !== 'user') this.unread += 1
      return true
    },
    resetConversation() {
      this.session = null
      this.messages = []
      this.handoff = 'none'
      this.typing = false
      this.notice = null
      this.ratingOpen = false
      this.rated = false
    },
  },
})
