// Every ```js block in README.md runs as written (from the repo root, importing 'shardtrain' by name).
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
