// Every ```js block in README.md runs as written (from the repo root, importing 'shardtrain' by name), and
// so do the four commands of "Train on your own text" (prepare, train, sample, export), in a scratch
// directory where test/ and config/ are the repository's (scripts/readme-blocks.ts).
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readmeWorkdir, runLine, shellBlockAfter } from '../scripts/readme-blocks.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(new URL('README.md', `file://${root}`), 'utf8');
const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

describe('README examples', function () {
  this.timeout(60000);
  it('has runnable examples', () => expect(blocks.length).to.be.greaterThan(3));
  blocks.forEach((code, i) => {
    const title = code.split('\n').find((l) => l.trim() && !l.startsWith('import')) ?? '';
    it(`example ${i + 1}: ${title.slice(0, 60)}`, async () => {
      const dir = `${root}dist/readme-examples`;
      mkdirSync(dir, { recursive: true });
      const file = `${dir}/example-${i + 1}.mjs`;
      writeFileSync(file, code);
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: root });
      // Where the example states its output in a trailing comment, check it.
      const claims = [...code.matchAll(/console\.log\(.*\); \/\/ (.+)$/gm)].map((m) => m[1]);
      for (const claim of claims) expect(stdout).to.include(claim);
    });
  });
});

describe('README: train on your own text', function () {
  this.timeout(600000);
  const lines = shellBlockAfter(readme, '## Train on your own text');
  let dir = '';
  before(() => (dir = readmeWorkdir(root, 'readme-own-text')));

  it('has the four commands: prepare, train, sample, export', () => {
    expect(lines.map((l) => l.split(' ').slice(0, 3).join(' '))).to.deep.equal(['npx shardtrain prepare', 'npx shardtrain train', 'npx shardtrain sample', 'npx shardtrain export']);
  });

  it('they run as printed, in order, each leaving what the next one reads', async () => {
    const [prepare, train, sample, exported] = lines;
    const p = await runLine(prepare, dir);
    expect(p.code, p.stderr).to.equal(0);
    for (const f of ['train.bin', 'val.bin', 'meta.json']) expect(existsSync(join(dir, 'data/sotu-text', f)), f).to.equal(true);
    const meta = JSON.parse(readFileSync(join(dir, 'data/sotu-text/meta.json'), 'utf8')) as { tokenizer: string; files: { train: number; val: number } };
    expect(meta).to.deep.include({ tokenizer: 'char', files: { train: 14, val: 2 } });

    const t = await runLine(train, dir);
    expect(t.code, t.stderr).to.equal(0);
    const summary = JSON.parse(readFileSync(join(dir, 'runs/own-text/summary.json'), 'utf8')) as { step: number; evalLoss: number };
    expect(summary.step).to.equal(150);
    // Well below the text's unigram entropy (2.95 nats per character: what a model of no context scores),
    // toward its in-sample bigram's 2.30: it learned from the context.
    expect(summary.evalLoss).to.be.below(2.6);

    const s = await runLine(sample, dir);
    expect(s.code, s.stderr).to.equal(0);
    const text = s.stdout.replace(/\n$/, '');
    expect(text.startsWith('Gentlemen of the Senate')).to.equal(true);
    expect([...text]).to.have.length('Gentlemen of the Senate'.length + 200);

    const e = await runLine(exported, dir);
    expect(e.code, e.stderr).to.equal(0);
    for (const f of ['torch.safetensors', 'torch.data.safetensors']) expect(existsSync(join(dir, 'runs/own-text', f)), f).to.equal(true);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));
});
