// A source file as pieces of text, read in chunks of a fixed size (bounded memory for any file size):
//   - UTF-8 is checked chunk by chunk (a multi-byte character split across two reads is carried over, not an
//     error); the first bad byte is named by its offset in the file, as Python's UnicodeDecodeError does
//     (the start of the bad sequence);
//   - a byte-order mark at the start of the file is dropped;
//   - line ends are read as Python's text mode reads them (nanoGPT's prepare scripts read text that way):
//     "\r\n" and a lone "\r" become "\n";
//   - `word` pieces end only where GPT-2's pre-tokenizer would cut anyway, between a character that is not
//     whitespace and one that is: its pattern ('s|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
//     has no look-behind, and no alternative matches a non-space character followed by a space, so the BPE
//     of the pieces is the BPE of the whole text. A stretch of more than kMaxCarryChunks chunks with no such
//     place (not natural text) is cut where it stands, the only place where the ids may differ from
//     encoding the file at once. `char` pieces end anywhere between two code points.
// Pieces depend only on the bytes and the chunk size, never on the thread count.

import { isUtf8 } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import type { Hash } from 'node:crypto';

export type PieceBoundary = 'word' | 'char';

/** A word piece waits this many chunks for a place to end before it is cut anyway. */
const kMaxCarryChunks = 8;

/** A problem with the text of one source: names the file (and the byte). */
export class SourceTextError extends Error {
  constructor(name: string, message: string) {
    super(`${name}: ${message}`);
    this.name = 'SourceTextError';
  }
}

/**
 * Index of the first byte of the first sequence in `bytes` that is not UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF; a sequence cut off by the end counts as bad), or -1.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  const cont = (i: number, lo = 0x80, hi = 0xbf): boolean => i < n && bytes[i] >= lo && bytes[i] <= hi;
  for (let i = 0; i < n; ) {
    const b = bytes[i];
    if (b < 0x80) i++;
    else if (b < 0xc2) return i; // a continuation byte without a lead, or an overlong 2-byte form
    else if (b < 0xe0) {
      if (!cont(i + 1)) return i;
      i += 2;
    } else if (b < 0xf0) {
      if (!cont(i + 1, b === 0xe0 ? 0xa0 : 0x80, b === 0xed ? 0x9f : 0xbf) || !cont(i + 2)) return i;
      i += 3;
    } else if (b < 0xf5) {
      if (!cont(i + 1, b === 0xf0 ? 0x90 : 0x80, b === 0xf4 ? 0x8f : 0xbf) || !cont(i + 2) || !cont(i + 3)) return i;
      i += 4;
    } else return i;
  }
  return -1;
}

/** Where a trailing, still incomplete multi-byte sequence starts (bytes.length when there is none). */
function completeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let j = n - 1; j >= Math.max(0, n - 4); j--) {
    const b = bytes[j];
    if ((b & 0xc0) === 0x80) continue; // a continuation byte: look further back for its lead
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > n - j && b < 0xf5 ? j : n;
  }
  return n;
}

/** The last place in `text` where a word piece may end: before whitespace that follows a non-space. */
function lastWordEnd(text: string): number {
  for (let i = text.length - 1; i > 0; i--) {
    if (kSpace.test(text[i]) && !kSpace.test(text[i - 1])) return i;
  }
  return -1;
}
const kSpace = /\s/;

export interface TextPiecesOptions {
  readonly chunkBytes: number;
  readonly boundary: PieceBoundary;
  /** Fed every byte of the file, as read. */
  readonly hash?: Hash;
  /** Called with the bytes of each chunk read (for a progress bar). */
  readonly onBytes?: (bytes: number) => void;
}

/** The text of `path` in pieces (see the top of this file); `name` is used in messages. */
export function* textPieces(path: string, name: string, o: TextPiecesOptions): Generator<string> {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.allocUnsafe(o.chunkBytes);
    let pending: Buffer = Buffer.alloc(0); // an incomplete sequence from the end of the last chunk
    let offset = 0; // file offset of pending[0]
    let atStart = true; // no text decoded yet: a BOM may come
    let held = ''; // a "\r" at the end of the last chunk: "\r\n" or a lone "\r"
    let rest = ''; // text after the last place a piece could end
    for (;;) {
      const got = readSync(fd, chunk, 0, chunk.length, null);
      if (got === 0) break;
      o.hash?.update(chunk.subarray(0, got));
      o.onBytes?.(got);
      const data = pending.length === 0 ? chunk.subarray(0, got) : Buffer.concat([pending, chunk.subarray(0, got)]);
      const cut = completeLength(data);
      let body = data.subarray(0, cut);
      if (!isUtf8(body)) throw notUtf8(name, body, offset);
      let bodyOffset = offset;
      pending = Buffer.from(data.subarray(cut));
      offset += cut;
      if (atStart && body.length > 0) {
        atStart = false;
        if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) {
          body = body.subarray(3);
          bodyOffset += 3;
        }
      }
      let raw = held + body.toString('utf8');
      held = raw.endsWith('\r') ? '\r' : '';
      if (held) raw = raw.slice(0, -1);
      const text = rest + raw.replace(/\r\n?/g, '\n');
      let end = o.boundary === 'char' ? text.length : lastWordEnd(text);
      if (end < 0 && text.length > kMaxCarryChunks * o.chunkBytes) end = text.length - (isHighSurrogate(text, text.length - 1) ? 1 : 0);
      if (end <= 0) {
        rest = text;
        continue;
      }
      rest = text.slice(end);
      yield text.slice(0, end);
    }
    if (pending.length > 0) throw notUtf8(name, pending, offset, true);
    const last = rest + (held ? '\n' : '');
    if (last.length > 0) yield last;
  } finally {
    closeSync(fd);
  }
}

function isHighSurrogate(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff;
}

function notUtf8(name: string, bytes: Uint8Array, offset: number, atEnd = false): SourceTextError {
  const at = atEnd ? 0 : Math.max(0, firstInvalidUtf8(bytes));
  const byte = `byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${offset + at}`;
  return new SourceTextError(name, atEnd ? `not UTF-8: the file ends inside a character (${byte})` : `not UTF-8: ${byte} starts no valid character`);
}
