/**
 * Safe HTML building for server-rendered pages: a tagged template that escapes every interpolated
 * value unless it is already `SafeHtml`, so data (machine ids, region strings) can never become markup.
 */

/** A fragment that is already HTML: the only thing `markup` interpolates without escaping. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue =
  SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for element content and for quoted attribute values alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/** Marks a trusted string as HTML. Only for markup this module's callers generated themselves. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.value;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  return escapeHtml(String(value));
}

/**
 * `markup\`<p title="${t}">${body}</p>\``: strings, numbers and arrays are escaped; `SafeHtml`
 * passes through; `null`, `undefined` and `false` render nothing (handy for optional parts).
 * Attribute values must be written quoted in the template. (Named `markup`, not `html`, so that
 * code formatters leave the templates' exact output alone.)
 */
export function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/**
 * A JSON data island (`<script type="application/json">`). The JSON is escaped so that no string
 * inside it can close the element or open a comment: `<`, `>`, `&` and the two JS line separators.
 */
export function jsonIsland(id: string, value: unknown, nonce?: string): SafeHtml {
  const json = JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  return markup`<script type="application/json" id="${id}"${nonce ? markup` nonce="${nonce}"` : ''}>${raw(json)}</script>`;
}

/** Only http(s) and same-site relative URLs become links; anything else (javascript:, data:) is dropped. */
export function safeUrl(url: string): string | undefined {
  if (/^\/(?!\/)/.test(url)) return url;
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}
