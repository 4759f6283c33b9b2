// `shardtrain prepare` and the reader of prepared directories: round trips (the reader gives the ids of the
// text, decoded back to it), the split, GPT-2 pieces that encode as the whole text does, train.bin's bytes
// independent of the thread count and the chunk size, standard input, and every bad input with its message.

import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { prepare, PrepareError, type PrepareOptions } from '../src/corpus/prepare.js';
import { firstInvalidUtf8 } from '../src/corpus/text-pieces.js';
import { openPrepared } from '../src/models/prepared.js';
import { charTokenizer, gpt2Tokenizer, kGpt2EndOfText } from '../src/models/tokenizer.js';
import { root } from './fixtures/fault-run.js';
import { freshSeed, rng } from './reference.js';

const seed = freshSeed();

/** Text with what trips tokenizers up: runs of spaces and newlines, CRLF, tabs, contractions, no-break and
 * ideographic spaces (whitespace to /\s/), 2-, 3- and 4-byte characters. */
function randomText(next: () => number, length: number): string {
  const words = ['the', 'Congress', "it's", "we'll", 'é', 'naïve', '中文', '😀', '42', '3.14', '--', '!?', 'a'];
  const gaps = [' ', ' ', ' ', '  ', '\n', '\n\n', '\r\n', '\r', '\t', ' \n', '\u00a0', '\u3000', '', '.\n'];
  let s = '';
  while (s.length < length) s += words[Math.floor(next() * words.length)] + gaps[Math.floor(next() * gaps.length)];
  return s;
}

/** What prepare reads a file as: no BOM, Python's universal newlines. */
const normalized = (text: string): string => text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');

function bytesOf(path: string): Buffer {
  return readFileSync(path);
}

describe(`prepare and prepared directories (seed ${seed})`, function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-prepare-'));
  const next = rng(seed);
  const corpus = join(dir, 'corpus');
  mkdirSync(join(corpus, 'sub'), { recursive: true });
  // 7 files: odd sizes, one with a BOM and CRLF line ends, one empty, one in a subfolder; and files the glob leaves out.
  const texts = new Map<string, string>();
  const put = (rel: string, text: string): void => {
    writeFileSync(join(corpus, rel), text);
    texts.set(rel, text);
  };
  put('a.txt', randomText(next, 1 + Math.floor(next() * 5000)));
  put('b.md', `\uFEFF${randomText(next, 3001).replace(/\n/g, '\r\n')}`);
  put('c.txt', '');
  put('d.txt', randomText(next, 77));
  put('e.txt', randomText(next, 20000));
  put('f.txt', 'x');
  put('sub/g.txt', randomText(next, 4096));
  writeFileSync(join(corpus, 'notes.json'), '{"not": "text"}');
  writeFileSync(join(corpus, '.hidden.txt'), 'hidden');
  const order = ['a.txt', 'b.md', 'c.txt', 'd.txt', 'e.txt', 'f.txt', 'sub/g.txt'];
  let n = 0;
  const out = (): string => join(dir, `out-${n++}`);
  const run = (o: Partial<PrepareOptions> & { out: string }) => prepare({ inputs: [corpus], threads: 1, ...o });

  it('char: the vocabulary is every code point of the corpus, sorted; whole files held out; the reader decodes back to the text', async () => {
    const o = out();
    const r = await run({ out: o, evalFraction: 0.3, seed: 3 });
    const m = r.meta;
    expect(m.sources.map((s) => s.path)).to.deep.equal(order.map((f) => `${corpus}/${f}`));
    const all = order.map((f) => normalized(texts.get(f)!)).join('');
    expect(m.vocab).to.deep.equal([...new Set(all)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    expect(m.files).to.deep.equal({ train: 5, val: 2 }); // round(7 · 0.3) = 2 whole files
    for (const s of m.sources) {
      const rel = s.path.slice(corpus.length + 1);
      expect(s.sha256).to.equal(createHash('sha256').update(texts.get(rel)!).digest('hex'));
      expect(s.bytes).to.equal(Buffer.byteLength(texts.get(rel)!));
    }
    const data = openPrepared(o, 'char');
    expect(data.writer).to.equal('shardtrain');
    expect(data.train.buffer).to.be.instanceOf(SharedArrayBuffer);
    const side = (split: string) => m.sources.filter((s) => s.split === split).map((s) => normalized(texts.get(s.path.slice(corpus.length + 1))!)).join('');
    expect(data.tokenizer.decode(data.train)).to.equal(side('train'));
    expect(data.tokenizer.decode(data.val)).to.equal(side('val'));
    expect(data.train.length).to.equal([...side('train')].length);
    // The same seed holds out the same files; another seed, (here) others.
    const again = await run({ out: out(), evalFraction: 0.3, seed: 3 });
    expect(again.meta.sources).to.deep.equal(m.sources);
  });

  it('gpt2: each piece encodes as the whole file does (+ <|endoftext|> per file); one file is split by a tail fraction', async () => {
    const single = join(dir, 'single.txt');
    const text = randomText(next, 30000);
    writeFileSync(single, text);
    const whole = [...gpt2Tokenizer().encode(normalized(text)), kGpt2EndOfText];
    for (const chunkBytes of [16, 61, 1000, 1 << 20]) {
      const o = out();
      const r = await prepare({ inputs: [single], out: o, tokenizer: 'gpt2', evalFraction: 0.25, chunkBytes, threads: 1 });
      const data = openPrepared(o, 'gpt2');
      expect([...data.train, ...data.val], `chunkBytes ${chunkBytes}`).to.deep.equal(whole);
      expect(data.val.length).to.equal(Math.round(whole.length * 0.25));
      expect(r.meta.split).to.equal('tail');
    }
  });

  it('without --threads a small corpus is tokenized on one thread (a thread per 32 MiB), with it on the threads asked for', async () => {
    const o = out();
    const auto = await prepare({ inputs: [corpus], out: o, tokenizer: 'gpt2', chunkBytes: 97, evalFraction: 0.2 });
    const asked = await prepare({ inputs: [corpus], out: out(), tokenizer: 'gpt2', chunkBytes: 97, evalFraction: 0.2, threads: 2 });
    expect([auto.threads, asked.threads]).to.deep.equal([1, 2]);
  });

  it('train.bin and val.bin are the same bytes for 1, 2 and 3 threads and any chunk size (char and gpt2)', async () => {
    for (const tokenizer of ['char', 'gpt2'] as const) {
      const results = [];
      for (const [threads, chunkBytes] of [[1, 1 << 20], [1, 97], [2, 97], [3, 64], [2, 4096]]) {
        const o = out();
        const r = await run({ out: o, tokenizer, threads, chunkBytes, evalFraction: 0.2 });
        results.push({ threads: r.threads, train: bytesOf(join(o, 'train.bin')), val: bytesOf(join(o, 'val.bin')) });
      }
      expect(results.map((x) => x.threads)).to.deep.equal([1, 1, 2, 3, 2]); // the pool did the work where asked
      for (const x of results.slice(1)) {
        expect(x.train.equals(results[0].train), tokenizer).to.equal(true);
        expect(x.val.equals(results[0].val), tokenizer).to.equal(true);
      }
    }
  });

  it('standard input (-), through the API and the CLI; a previous prepare\'s directory is replaced', async () => {
    const text = randomText(next, 5000);
    const o = out();
    await prepare({ inputs: ['-'], out: o, stdin: Readable.from([Buffer.from(text)]), evalFraction: 0.1 });
    const data = openPrepared(o);
    expect(data.tokenizer.decode(data.train) + data.tokenizer.decode(data.val)).to.equal(normalized(text));
    expect(readdirSync(o).sort()).to.deep.equal(['meta.json', 'train.bin', 'val.bin']); // the stdin copy is gone
    const cli = await cliWithInput(['prepare', '-', '--out', o, '--tokenizer', 'gpt2', '--eval-fraction', '0'], 'Hello world');
    expect(cli.code, cli.stderr).to.equal(0);
    expect(cli.stdout).to.match(/^prepared .*: gpt2 tokenizer \(50257 symbols\), 3 training tokens from 1 file, 0 held-out tokens from the end of the text; /);
    const again = openPrepared(o, 'gpt2');
    expect([...again.train]).to.deep.equal([15496, 995, kGpt2EndOfText]);
    expect(again.val.length).to.equal(0);
  });

  it('a UTF-8 character split across two reads, a BOM and CRLF are not errors', async () => {
    const f = join(dir, 'split.txt');
    writeFileSync(f, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('ab😀é中\r\n\r\nz\r')]));
    for (const chunkBytes of [16, 17, 18, 19, 20, 21]) {
      const o = out();
      await prepare({ inputs: [f], out: o, chunkBytes, evalFraction: 0 });
      const data = openPrepared(o);
      expect(data.tokenizer.decode(data.train)).to.equal('ab😀é中\n\nz\n');
    }
  });

  it('firstInvalidUtf8 agrees with TextDecoder on random bytes and names the start of the bad sequence', () => {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    for (let k = 0; k < 2000; k++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(next() * 8) }, () => (next() < 0.5 ? 0x80 + Math.floor(next() * 0x80) : Math.floor(next() * 256)));
      let valid = true;
      try {
        decoder.decode(bytes);
      } catch {
        valid = false;
      }
      const at = firstInvalidUtf8(bytes);
      expect(at === -1, `${Buffer.from(bytes).toString('hex')}`).to.equal(valid);
      if (!valid) expect(() => decoder.decode(bytes.subarray(0, at))).to.not.throw(); // everything before it is fine
    }
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc3, 0x41]))).to.equal(1); // a lead whose continuation is missing
    expect(firstInvalidUtf8(Buffer.from([0xed, 0xa0, 0x80]))).to.equal(0); // a surrogate
    expect(firstInvalidUtf8(Buffer.from([0xc0, 0xaf]))).to.equal(0); // overlong
  });

  describe('bad input: one line, nothing written, the output directory as it was', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    const latin1 = join(bad, 'latin1.txt');
    writeFileSync(latin1, Buffer.concat([Buffer.from('x'.repeat(100) + 'caf'), Buffer.from([0xe9]), Buffer.from(' au lait')]));
    const cutOff = join(bad, 'cut.txt');
    writeFileSync(cutOff, Buffer.from([0x61, 0xe4, 0xb8]));
    const emptyDir = join(bad, 'empty');
    mkdirSync(emptyDir);
    writeFileSync(join(emptyDir, 'x.json'), '{}');
    const emptyFile = join(bad, 'empty.txt');
    writeFileSync(emptyFile, '');
    const many = join(bad, 'many.txt');
    writeFileSync(many, Array.from({ length: 65537 }, (_, i) => String.fromCodePoint(0x20 + i < 0xd800 ? 0x20 + i : 0x20 + i + 0x800)).join('')); // no \r (read as \n), no surrogates
    const foreign = join(bad, 'foreign-out');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'notes.txt'), 'mine');
    const cases: Array<[string, Partial<PrepareOptions> & { inputs: string[] }, string | RegExp]> = [
      ['a file that is not UTF-8', { inputs: [latin1] }, `${latin1}: not UTF-8: byte 0xe9 at offset 103 starts no valid character`],
      ['the same, found late in a small chunk', { inputs: [latin1], chunkBytes: 16 }, `${latin1}: not UTF-8: byte 0xe9 at offset 103 starts no valid character`],
      ['a file that ends inside a character', { inputs: [cutOff] }, `${cutOff}: not UTF-8: the file ends inside a character (byte 0xe4 at offset 1)`],
      ['an input that does not exist', { inputs: [join(bad, 'nope.txt')] }, `${join(bad, 'nope.txt')}: no such file or directory`],
      ['a folder with no text files', { inputs: [emptyDir] }, `empty corpus: no file in ${emptyDir} matches *.{txt,md}`],
      ['an empty file', { inputs: [emptyFile] }, 'empty corpus: the source holds no text'],
      ['an empty file (gpt2)', { inputs: [emptyFile], tokenizer: 'gpt2' }, 'empty corpus: the source holds no text'],
      ['more than 65,536 characters in a char vocabulary', { inputs: [many] }, 'the corpus has 65537 distinct characters; token ids are uint16, so a char vocabulary holds at most 65536 (use --tokenizer gpt2)'],
      ['a tail split of one token', { inputs: [join(corpus, 'f.txt')] }, 'the corpus has 1 token: too few to hold out 0.1 of them and train on the rest'],
      ['an eval fraction of 1', { inputs: [corpus], evalFraction: 1 }, '--eval-fraction must be a number in [0, 1), got 1'],
      ['an unknown tokenizer', { inputs: [corpus], tokenizer: 'bpe' as 'gpt2' }, '--tokenizer must be one of char, gpt2, got "bpe"'],
      ['standard input twice', { inputs: ['-', '-'] }, "'-' (standard input) is given more than once"],
      ['a bad glob', { inputs: [corpus], glob: '*.{txt' }, '--glob "*.{txt": \'{\' without a closing \'}\''],
    ];
    for (const [what, options, message] of cases) {
      it(what, async () => {
        const o = join(bad, `out-${what.replace(/\W+/g, '-')}`);
        const err = await prepare({ out: o, threads: 1, ...options }).then(() => null, (e: Error) => e);
        expect(err).to.be.instanceOf(PrepareError);
        if (typeof message === 'string') expect(err!.message).to.equal(message);
        else expect(err!.message).to.match(message);
        expect(err!.message).to.not.include('\n');
        expect(() => readdirSync(o)).to.throw(/ENOENT/); // the directory this run would have made is gone
      });
    }

    it('an --out that holds files of its own is refused and left as it was; a failure in an existing directory leaves it as it was', async () => {
      const err = await prepare({ inputs: [corpus], out: foreign, threads: 1 }).then(() => null, (e: Error) => e);
      expect(err!.message).to.equal(`--out ${foreign} holds notes.txt, which is not a previous prepare's output: choose a new or empty directory (a previous prepare's train.bin, val.bin and meta.json are replaced)`);
      expect(readdirSync(foreign)).to.deep.equal(['notes.txt']);
      const previous = out();
      await run({ out: previous });
      const before = readdirSync(previous).map((f) => [f, bytesOf(join(previous, f)).toString('base64')]);
      await prepare({ inputs: [latin1], out: previous }).then(() => expect.fail('should fail'), () => undefined);
      expect(readdirSync(previous).map((f) => [f, bytesOf(join(previous, f)).toString('base64')])).to.deep.equal(before);
    });

    it('the CLI prints the one line and exits 1', async () => {
      const r = await cliWithInput(['prepare', latin1, '--out', join(bad, 'cli-out')], '');
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`shardtrain prepare: ${latin1}: not UTF-8: byte 0xe9 at offset 103 starts no valid character\n`);
    });
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});

/** The CLI with `input` on its standard input. */
function cliWithInput(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(root, 'dist/src/cli/main.js'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('tokenizers', () => {
  it('gpt2 is r50k_base: "Hello world" → [15496, 995], 50,257 tokens, <|endoftext|> in text is ordinary text', () => {
    const t = gpt2Tokenizer();
    expect(t.encode('Hello world')).to.deep.equal([15496, 995]);
    expect(t.vocabSize).to.equal(50257);
    expect(t.encode('<|endoftext|>')).to.not.include(kGpt2EndOfText);
    expect(t.decode(t.encode('naïve 中文 😀'))).to.equal('naïve 中文 😀');
    expect(() => t.decode([50257])).to.throw("token id 50257 at 0 is not in GPT-2's vocabulary of 50257");
  });

  it('char: code points (astral too); a character outside the vocabulary is one line naming it', () => {
    const t = charTokenizer(['\n', ' ', 'a', 'b', '😀']);
    expect(t.encode('ab 😀\n')).to.deep.equal([2, 3, 1, 4, 0]);
    expect(t.decode([4, 2])).to.equal('😀a');
    expect(() => t.encode('abc')).to.throw('the character "c" (U+0063) at 2 is not in the vocabulary of 5 characters');
    expect(() => t.encode('é')).to.throw('the character "é" (U+00E9) at 0 is not in the vocabulary of 5 characters');
    expect(() => t.decode([5])).to.throw('token id 5 at 0 is not in the vocabulary of 5 characters');
    expect(() => charTokenizer(['a', 'a'])).to.throw('char tokenizer: "a" (U+0061) is in the vocabulary twice');
    expect(() => charTokenizer(['ab'])).to.throw('char tokenizer: vocabulary entry 0 is "ab", not one character');
  });
});
