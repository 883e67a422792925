/**
 * Unsaved console forms survive a sign-out on 401 (token expired): the form is parked in sessionStorage (this tab
 * only) when the login page replaces it, and offered again when the operator is back on the page.
 */
import type { Faq, FaqWrite } from '@/api/types'

const FAQ_KEY = 'xiaoke.console.draft.faq.v1'

export type FaqForm = Required<Pick<FaqWrite, 'question' | 'answer' | 'similar' | 'enabled'>> & { category: string; intent: string }

export interface FaqDraft {
  /** The FAQ being edited as it was loaded (its `version` guards against a concurrent edit); null for a new one. */
  faq: Faq | null
  form: FaqForm
}

export function saveFaqDraft(d: FaqDraft): void {
  try {
    sessionStorage.setItem(FAQ_KEY, JSON.stringify(d))
  } catch {
    /* storage disabled or full: nothing to offer later */
  }
}

export function peekFaqDraft(): FaqDraft | null {
  try {
    const raw = sessionStorage.getItem(FAQ_KEY)
    const d = raw ? (JSON.parse(raw) as FaqDraft) : null
    return d && typeof d.form?.question === 'string' && typeof d.form?.answer === 'string' ? d : null
  } catch {
    return null
  }
}

export function clearFaqDraft(): void {
  try {
    sessionStorage.removeItem(FAQ_KEY)
  } catch {
    /* ignore */
  }
}
