// Error messages are one line (the CLI prints only the first, and logs are grepped line by line), but they
// quote text from files: keys, tensor names, paths, parser messages. Those may hold line breaks.

/** What str.splitlines (Python) and the Unicode line-breaking rules treat as ending a line. */
const kLineBreaks = /[\n\r\v\f\x1c-\x1e\u0085\u2028\u2029]/g;

/** `text` with every character that could end a line escaped as in a JSON string (\n, \u2028, ...). */
export function oneLine(text: string): string {
  return text.replace(kLineBreaks, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A JSON value for a message: quoted, escaped, at most `max` characters. */
export function showValue(value: unknown, max = 60): string {
  const text = value === undefined ? 'undefined' : oneLine(JSON.stringify(value) ?? String(value));
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
