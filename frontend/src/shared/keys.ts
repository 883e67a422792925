/**
 * Enter that should send a message: not Shift+Enter (new line) and not the Enter that confirms an IME candidate
 * (pinyin, zhuyin...). Chrome/Firefox flag that key with `isComposing`; Safari fires `compositionend` first and
 * then a keydown with `isComposing` false but `keyCode` 229, so both are checked.
 */
export function isSendEnter(e: KeyboardEvent): boolean {
  return e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229
}
