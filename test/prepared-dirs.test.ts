// Reading prepared directories written by nanoGPT's own prepare scripts (test/fixtures/nanogpt_prepare.py:
// numpy's uint16 tofile, pickle's meta.pkl) and every bad directory, each a one-line error naming the file.

import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepare } from '../src/corpus/prepare.js';
import { openPrepared, PreparedDataError } from '../src/models/prepared.js';
import { gpt2Tokenizer } from '../src/models/tokenizer.js';
import { root } from './fixtures/fault-run.js';
import { freshSeed, rng } from './reference.js';
import { needTorch, python } from './fixtures/torch.js';

const script = join(root, 'test/fixtures/nanogpt_prepare.py');
const seed = freshSeed();

function nanogpt(kind: 'char' | 'ids', out: string, src: string): void {
  const r = spawnSync(python, [script, kind, out, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

describe(`prepared directories from nanoGPT and bad ones (seed ${seed})`, function () {
  this.timeout(60000);
  const dir = mkdtempSync(join(tmpdir(), 'shardtrain-prepared-'));
  const next = rng(seed);
  const alphabet = 'abcdefghij KLMNOP\n.,;é中😀';
  const text = Array.from({ length: 2000 + Math.floor(next() * 3000) }, () => [...alphabet][Math.floor(next() * [...alphabet].length)]).join('');
  const textFile = join(dir, 'input.txt');
  writeFileSync(textFile, text);

  before(function () {
    needTorch(this, "the nanoGPT-format checks (numpy comes with Debian's python3-torch)");
  });

  it("shakespeare_char's layout (meta.pkl): the char vocabulary, and the ids decode to the text's two parts", () => {
    const out = join(dir, 'char');
    nanogpt('char', out, textFile);
    const data = openPrepared(out, 'char');
    expect(data.writer).to.equal('nanogpt');
    expect(data.vocab).to.deep.equal([...new Set(text)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!));
    const cps = [...text]; // Python slices by code point
    const pyCut = Math.floor(cps.length * 0.9);
    expect(data.tokenizer.decode(data.train)).to.equal(cps.slice(0, pyCut).join(''));
    expect(data.tokenizer.decode(data.val)).to.equal(cps.slice(pyCut).join(''));
    expect(data.train.buffer).to.be.instanceOf(SharedArrayBuffer);
  });

  it("shakespeare's and openwebtext's layout (no meta): GPT-2 ids", () => {
    const ids = gpt2Tokenizer().encode(text);
    const idsFile = join(dir, 'ids.json');
    writeFileSync(idsFile, JSON.stringify(ids));
    const out = join(dir, 'gpt2');
    nanogpt('ids', out, idsFile);
    const data = openPrepared(out, 'gpt2');
    expect(data.tokenizer.name).to.equal('gpt2');
    expect([...data.train, ...data.val]).to.deep.equal(ids);
    expect(data.val.length).to.equal(ids.length - Math.floor(ids.length * 0.9));
  });

  it('shardtrain reads nanoGPT\'s char data as nanoGPT reads shardtrain\'s: the same ids for the same vocabulary', async () => {
    const ours = join(dir, 'ours');
    await prepare({ inputs: [textFile], out: ours, evalFraction: 0, threads: 1 });
    const theirs = openPrepared(join(dir, 'char'));
    const mine = openPrepared(ours);
    expect(mine.vocab).to.deep.equal(theirs.vocab);
    expect([...mine.train]).to.deep.equal([...theirs.train, ...theirs.val]);
    // numpy reads ours back as the same uint16 ids
    const r = spawnSync(python, ['-c', `import numpy as np, json; print(json.dumps(np.fromfile(${JSON.stringify(join(ours, 'train.bin'))}, dtype=np.uint16)[:50].tolist()))`], { encoding: 'utf8' });
    expect(JSON.parse(r.stdout)).to.deep.equal([...mine.train.subarray(0, 50)]);
  });

  describe('bad directories: one line naming the file', () => {
    const copy = (from: string, name: string): string => {
      const to = join(dir, name);
      mkdirSync(to);
      for (const f of ['train.bin', 'val.bin', 'meta.pkl', 'meta.json']) {
        try {
          copyFileSync(join(dir, from, f), join(to, f));
        } catch {
          // not in that layout
        }
      }
      return to;
    };
    const cases: Array<[string, () => [string, 'char' | 'gpt2' | undefined], (d: string) => string | { startsWith: string }]> = [
      ['a .bin of odd length', () => {
        const d = copy('gpt2', 'odd');
        writeFileSync(join(d, 'val.bin'), Buffer.concat([readFileSync(join(d, 'val.bin')), Buffer.from([1])]));
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'val.bin')}: ${readFileSync(join(d, 'val.bin')).length} bytes, an odd number: not uint16 token ids`],
      ['a token id >= the vocabulary', () => {
        const d = copy('char', 'big-id');
        const b = readFileSync(join(d, 'train.bin'));
        b.writeUInt16LE(1000, 2 * 17);
        writeFileSync(join(d, 'train.bin'), b);
        return [d, 'char'];
      }, (d) => `prepared data ${join(d, 'train.bin')}: token 1000 at position 17 is not below the vocabulary size ${openPrepared(join(dir, 'char')).tokenizer.vocabSize} (char)`],
      ['a GPT-2 id past 50,256', () => {
        const d = copy('gpt2', 'big-gpt2');
        const b = readFileSync(join(d, 'val.bin'));
        b.writeUInt16LE(50257, 0);
        writeFileSync(join(d, 'val.bin'), b);
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'val.bin')}: token 50257 at position 0 is not below the vocabulary size 50257 (gpt2)`],
      ['another tokenizer than the config names', () => [join(dir, 'gpt2'), 'char'], (d) => `prepared data ${d}: was prepared with the gpt2 tokenizer (no meta.json or meta.pkl: nanoGPT's GPT-2 tokens), not char`],
      ['another tokenizer (meta.json)', () => [join(dir, 'ours'), 'gpt2'], (d) => `prepared data ${d}: was prepared with the char tokenizer (meta.json), not gpt2`],
      ['a meta.json that does not parse', () => {
        const d = copy('ours', 'bad-json');
        writeFileSync(join(d, 'meta.json'), '{"format": ');
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'meta.json')}: not valid JSON (Unexpected end of JSON input)`],
      ['a meta.json whose vocabulary disagrees with its size', () => {
        const d = copy('ours', 'bad-vocab');
        const m = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as { vocabSize: number };
        m.vocabSize += 1;
        writeFileSync(join(d, 'meta.json'), JSON.stringify(m));
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'meta.json')}: vocabSize is ${openPrepared(join(dir, 'ours')).tokenizer.vocabSize + 1} but vocab lists ${openPrepared(join(dir, 'ours')).tokenizer.vocabSize} symbols`],
      ['a meta.json whose token counts disagree with the files', () => {
        const d = copy('ours', 'bad-count');
        const m = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as { tokens: { train: number } };
        m.tokens.train -= 1;
        writeFileSync(join(d, 'meta.json'), JSON.stringify(m));
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'meta.json')}: says ${openPrepared(join(dir, 'ours')).train.length - 1} training and 0 held-out tokens, the files hold ${openPrepared(join(dir, 'ours')).train.length} and 0`],
      ['a meta.json with an unknown key', () => {
        const d = copy('ours', 'bad-key');
        const m = JSON.parse(readFileSync(join(d, 'meta.json'), 'utf8')) as Record<string, unknown>;
        m.colour = 'blue';
        writeFileSync(join(d, 'meta.json'), JSON.stringify(m));
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'meta.json')}: unknown key colour`],
      ['a meta.pkl that is not a pickle', () => {
        const d = copy('char', 'bad-pkl');
        writeFileSync(join(d, 'meta.pkl'), 'not a pickle');
        return [d, undefined];
      }, (d) => ({ startsWith: `prepared data ${join(d, 'meta.pkl')}: not a pickle that can be read (` })],
      ['a meta.pkl whose itos and stoi disagree', () => {
        const d = copy('char', 'bad-stoi');
        const r = spawnSync(python, ['-c', `import pickle; p=${JSON.stringify(join(d, 'meta.pkl'))}; m=pickle.load(open(p,'rb')); a,b=m['itos'][0],m['itos'][1]; m['stoi'][a],m['stoi'][b]=1,0; pickle.dump(m,open(p,'wb'))`]);
        expect(r.status).to.equal(0);
        return [d, undefined];
      }, (d) => `prepared data ${join(d, 'meta.pkl')}: itos[0] is "\\n" but stoi["\\n"] is 1: they disagree`],
      ['a directory without train.bin', () => [dir, undefined], (d) => `prepared data ${d}: no train.bin: not a prepared directory (shardtrain prepare, like nanoGPT's prepare scripts, writes train.bin and val.bin)`],
      ['no directory', () => [join(dir, 'nope'), undefined], (d) => `prepared data ${d}: no such directory`],
    ];
    for (const [what, make, message] of cases) {
      it(what, () => {
        const [d, expected] = make();
        const want = message(d);
        let err: Error | null = null;
        try {
          openPrepared(d, expected);
        } catch (e) {
          err = e as Error;
        }
        expect(err).to.be.instanceOf(PreparedDataError);
        if (typeof want === 'string') expect(err!.message).to.equal(want);
        else expect(err!.message.startsWith(want.startsWith), err!.message).to.equal(true);
        expect(err!.message).to.not.include('\n');
      });
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});
