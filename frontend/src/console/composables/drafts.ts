/**
 * Unsaved console forms survive a sign-out on 401 (token expired): the form is parked in sessionStorage (this tab
 * only) when the login page replaces it, and offered again when the operator is back on the page.
 * Parked: the FAQ dialog and edited response templates. Not parked: the new-user form (it holds a password,
 * which never goes to storage, and is three fields to retype).
 */
import type { Faq, FaqWrite } from '@/api/types'

const FAQ_KEY = 'xiaoke.console.draft.faq.v1'
const TEMPLATES_KEY = 'xiaoke.console.draft.templates.v1'

function park(key: string, value: unknown): void {
  try {
    sessionStorage.setItem(key, JSON.stringify(value))
  } catch {
    /* storage disabled or full: nothing to offer later */
  }
}

function peek<T>(key: string, valid: (v: unknown) => v is T): T | null {
  try {
    const raw = sessionStorage.getItem(key)
    const v: unknown = raw ? JSON.parse(raw) : null
    return valid(v) ? v : null
  } catch {
    return null
  }
}

function clear(key: string): void {
  try {
    sessionStorage.removeItem(key)
  } catch {
    /* ignore */
  }
}

export type FaqForm = Required<Pick<FaqWrite, 'question' | 'answer' | 'similar' | 'enabled'>> & { category: string; intent: string }

export interface FaqDraft {
  /** The FAQ being edited as it was loaded (its `version` guards against a concurrent edit); null for a new one. */
  faq: Faq | null
  form: FaqForm
}

const isFaqDraft = (v: unknown): v is FaqDraft => {
  const form = (v as FaqDraft | null)?.form
  return typeof form?.question === 'string' && typeof form?.answer === 'string'
}

export const saveFaqDraft = (d: FaqDraft): void => park(FAQ_KEY, d)
export const peekFaqDraft = (): FaqDraft | null => peek(FAQ_KEY, isFaqDraft)
export const clearFaqDraft = (): void => clear(FAQ_KEY)

/** Edited template variants by template key (only the templates that differed from what was loaded). */
export type TemplatesDraft = Record<string, string[]>

const isTemplatesDraft = (v: unknown): v is TemplatesDraft =>
  !!v &&
  typeof v === 'object' &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => Array.isArray(x) && x.every((s) => typeof s === 'string'))

export const saveTemplatesDraft = (d: TemplatesDraft): void => park(TEMPLATES_KEY, d)
export const peekTemplatesDraft = (): TemplatesDraft | null => peek(TEMPLATES_KEY, isTemplatesDraft)
export const clearTemplatesDraft = (): void => clear(TEMPLATES_KEY)
