/**
 * Named types derived from the generated `paths` only (never from schema names, which the backend may
 * rename): regenerating schema.d.ts keeps these working or fails the type check where the contract moved.
 */
import type { paths } from './paths'

type JsonOf<R> = R extends { content: { 'application/json': infer T } } ? T : never
/** JSON body of the 200/201 response of an operation. */
export type Ok<Op> = Op extends { responses: infer R }
  ? R extends { 200: infer A }
    ? JsonOf<A>
    : R extends { 201: infer B }
      ? JsonOf<B>
      : never
  : never
/** JSON request body of an operation. */
export type ReqBody<Op> = Op extends { requestBody?: infer B } ? JsonOf<NonNullable<B>> : never

export type ChatRequest = ReqBody<paths['/api/v1/chat']['post']>
export type ChatResponse = Ok<paths['/api/v1/chat']['post']>
export type Reply = ChatResponse['reply']
export type ReplyType = Reply['type']
export type HistoryResponse = Ok<paths['/api/v1/sessions/{session_id}/history']['get']>
export type HistoryMessage = HistoryResponse['messages'][number]
export type HandoffStatus = HistoryResponse['handoff']['status']
export type HandoffResponse = Ok<paths['/api/v1/sessions/{session_id}/handoff']['post']>
export type FeedbackRequest = ReqBody<paths['/api/v1/feedback']['post']>
export type RatingRequest = ReqBody<paths['/api/v1/sessions/{session_id}/rating']['post']>

export type LoginResponse = Ok<paths['/api/v1/admin/auth/login']['post']>
export type Role = LoginResponse['role']
export type Me = Ok<paths['/api/v1/admin/me']['get']>
export type User = Ok<paths['/api/v1/admin/users']['get']>['items'][number]
export type UserCreate = ReqBody<paths['/api/v1/admin/users']['post']>
export type FaqList = Ok<paths['/api/v1/admin/faqs']['get']>
export type Faq = FaqList['items'][number]
export type FaqWrite = ReqBody<paths['/api/v1/admin/faqs']['post']>
export type FaqUpdate = ReqBody<paths['/api/v1/admin/faqs/{faq_id}']['put']>
export type Category = Ok<paths['/api/v1/admin/faqs/categories']['get']>['items'][number]
export type ImportResult = Ok<paths['/api/v1/admin/faqs/import']['post']>
export type ImportRowError = ImportResult['errors'][number]
export type IndexStatus = Ok<paths['/api/v1/admin/index']['get']>
export type IndexVersion = Ok<paths['/api/v1/admin/index/publish']['post']>
export type Template = Ok<paths['/api/v1/admin/templates']['get']>['items'][number]
export type PlaygroundResponse = Ok<paths['/api/v1/admin/playground']['post']>
export type ConversationQuery = NonNullable<paths['/api/v1/admin/conversations']['get']['parameters']['query']>
export type ConversationList = Ok<paths['/api/v1/admin/conversations']['get']>
export type ConversationSummary = ConversationList['items'][number]
export type Transcript = Ok<paths['/api/v1/admin/conversations/{session_id}']['get']>
export type TranscriptMessage = Transcript['messages'][number]
export type Cluster = Ok<paths['/api/v1/admin/unanswered']['get']>['clusters'][number]
export type AcceptRequest = ReqBody<paths['/api/v1/admin/unanswered/{cluster_id}/accept']['post']>
export type Analytics = Ok<paths['/api/v1/admin/analytics']['get']>
export type HandoffTicket = Ok<paths['/api/v1/admin/handoffs']['get']>['items'][number]
export type HandoffTicketStatus = HandoffTicket['status']
/** Whether the shop vouched for the visitor (and which customer it is), or an anonymous visitor. */
export type VisitorIdentity = HandoffTicket['visitor']

/** Payload of an SSE `message` event (visitor and agent streams). */
export interface EventMessage {
  id: string
  role: 'agent' | 'bot' | 'user'
  text: string
  created_at: string
  session_id?: string
  ticket_id?: string
}
/** Payload of an SSE `handoff` event. */
export interface EventHandoff {
  status: HandoffStatus | 'closed'
  agent?: string | null
  ticket_id?: string
  session_id?: string
}

export type FaqId = paths['/api/v1/admin/faqs/{faq_id}']['put']['parameters']['path']['faq_id']
export type UserId = paths['/api/v1/admin/users/{user_id}']['delete']['parameters']['path']['user_id']
