/**
 * The HTML document around every page: head, theme colours, the stylesheet (inline with a nonce,
 * or a served file), the JSON config island and the module script. No inline handlers, no
 * external assets, so a strict Content-Security-Policy fits.
 */
import { jsonIsland, markup, raw, type SafeHtml } from './html.js';
import { PAGE_CSS } from './styles.js';
import { CONFIG_ELEMENT_ID, type PageConfig } from '../ui/config.js';

export interface DocumentParts {
  readonly title: string;
  readonly description?: string;
  readonly nonce?: string | undefined;
  /** URL of the stylesheet; when absent the CSS is inlined (with the nonce, if any). */
  readonly cssHref?: string | undefined;
  /** URL of the page's ES module. */
  readonly scriptSrc?: string | undefined;
  readonly config?: PageConfig;
  readonly bodyAttrs?: SafeHtml;
  /** Extra elements for the head (e.g. a meta refresh). */
  readonly head?: SafeHtml | undefined;
  readonly body: SafeHtml;
}

// A tiny inline favicon (a yellow dot) so browsers do not ask the server for /favicon.ico.
const FAVICON =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='6' fill='%23f2b705'/%3E%3C/svg%3E";

export function renderDocument(p: DocumentParts): string {
  const nonceAttr = p.nonce ? markup` nonce="${p.nonce}"` : '';
  const style = p.cssHref
    ? markup`<link rel="stylesheet" href="${p.cssHref}">`
    : markup`<style${nonceAttr}>${raw(PAGE_CSS)}</style>`;
  const doc = markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="theme-color" content="#f3efe7" media="(prefers-color-scheme: light)">
<meta name="theme-color" content="#0e1015" media="(prefers-color-scheme: dark)">
${p.description ? markup`<meta name="description" content="${p.description}">` : ''}
<title>${p.title}</title>
${p.head ?? ''}
<link rel="icon" href="${FAVICON}">
${style}
${p.scriptSrc ? markup`<script type="module" src="${p.scriptSrc}"${nonceAttr}></script>` : ''}
</head>
<body${p.bodyAttrs ?? ''}>
${p.body}
${p.config ? jsonIsland(CONFIG_ELEMENT_ID, p.config, p.nonce) : ''}
</body>
</html>
`;
  return doc.value;
}
