import { inject, type InjectionKey } from 'vue'
import type { WidgetApi } from '@/api/widget'
import type { I18n } from '@/shared/i18n'

export interface WidgetConfig {
  apiBase: string
  /** localStorage key holding the session id + token. */
  storageKey: string
  maxChars: number
  /** The host shop's id of its signed-in shopper and the shop's signature of it (data-user-id /
   *  data-user-signature): sent when a conversation starts; the API keeps the id only when the signature verifies. */
  userId: string | null
  userSignature: string | null
}

export const API_KEY: InjectionKey<WidgetApi> = Symbol('xiaoke-api')
export const I18N_KEY: InjectionKey<I18n> = Symbol('xiaoke-i18n')
export const CONFIG_KEY: InjectionKey<WidgetConfig> = Symbol('xiaoke-config')

export function useI18n(): I18n {
  const i18n = inject(I18N_KEY)
  if (!i18n) throw new Error('XiaoKe widget: i18n not provided')
  return i18n
}
