// The reason a JSON.parse failure is reported with, without the text it failed on. V8's messages
// quote the start of the offending text (`Unexpected token 'A', "API_KEY=hu"... is not valid JSON`),
// so an import error about a file the server read for an API-submitted spec would hand its first
// bytes to the caller (issue 12, item 2). File and line are reported beside this reason; the
// position and V8's description of the grammar error are kept, the quoted text never is.

/** `err` (from JSON.parse) → a reason that says what is wrong and where, quoting nothing. */
export function jsonSyntaxReason(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  if (m.startsWith('Unexpected token')) return 'unexpected token';
  if (m.startsWith('Unexpected end of JSON input')) return 'unexpected end of input';
  // grammar messages ("Expected ',' or '}' after property value in JSON at position 6") quote
  // only JSON's own punctuation; anything else with a double quote may quote the text
  if (!m.includes('"')) return m.replace(/ in JSON at position /, ' at position ');
  const pos = /at position (\d+)/.exec(m);
  return `not valid JSON${pos ? ` (position ${pos[1]})` : ''}`;
}
